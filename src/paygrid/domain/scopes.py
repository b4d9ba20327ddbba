"""What an API key may do: one read and one write scope per resource, the roles that bundle
them, and which scope each ``/v1`` request needs. Pure."""

from __future__ import annotations

from typing import Final

RESOURCES: Final = (
    "payments",
    "refunds",
    "customers",
    "webhooks",
    "connector_accounts",
    "products",
    "prices",
    "invoices",
    "payment_links",
    "reports",
    "settlements",
    "reconciliation",
    "account",
    "admin",
)
ALL_SCOPES: Final = frozenset(f"{r}:{a}" for r in RESOURCES for a in ("read", "write"))
READ_SCOPES: Final = frozenset(s for s in ALL_SCOPES if s.endswith(":read"))
# A secret key created without scopes or a role: everything but administration (as before
# scopes existed).
STANDARD: Final = ALL_SCOPES - {"admin:read", "admin:write"}

ROLES: Final[dict[str, frozenset[str]]] = {
    "admin": ALL_SCOPES,
    "operator": frozenset({"payments:read", "payments:write", "refunds:read", "refunds:write"}),
    # Support staff also make payment links for customers (issue 14 §6).
    "support": READ_SCOPES | {"refunds:write", "payment_links:write"},
    "viewer": READ_SCOPES,
}

# The first path segment after /v1 names the resource a request touches.
_RESOURCE_OF_SEGMENT: Final = {
    "payments": "payments",
    "checkout_sessions": "payments",
    "refunds": "refunds",
    "customers": "customers",
    # Saved methods belong to customers: creating (with or without ``customer``), attaching
    # and detaching one need customers:write (docs/scopes.md; publishable keys have no
    # scopes and may only create unattached methods).
    "payment_methods": "customers",
    # Setup intents save methods to customers, and mandates are their acceptance of it.
    "setup_intents": "customers",
    "mandates": "customers",
    # Test clocks hold customers (deleting one deletes them): customers' scopes.
    "test_clocks": "customers",
    "webhook_endpoints": "webhooks",
    "events": "webhooks",
    "connector_accounts": "connector_accounts",
    "routing_rules": "connector_accounts",
    "products": "products",
    "prices": "prices",
    # Invoice items are the lines of invoices to come (Stripe's restricted keys group them).
    "invoices": "invoices",
    "invoiceitems": "invoices",
    # Subscriptions make and charge invoices: the same scopes.
    "subscriptions": "invoices",
    # How invoices are numbered, dunned and emailed: the invoices' scopes.
    "billing_settings": "invoices",
    # Test helpers script a customer's saved methods: customers' scopes.
    "test_helpers": "customers",
    # A portal session lets a customer change their own default method and subscriptions.
    "billing_portal": "customers",
    # Payment links are public pages that sell prices (issue 14 §6): their own scopes.
    "payment_links": "payment_links",
    # Reports read every payment's figures; creating a report run needs reports:write.
    "reports": "reports",
    "report_runs": "reports",
    # What providers paid out, with fees (issue 15 §1); importing on demand needs write.
    "settlements": "settlements",
    "settlement_imports": "settlements",
    # Reconciliation runs and their discrepancies (issue 15 §2); creating a run and
    # resolving a discrepancy need reconciliation:write (in no role but admin).
    "reconciliation_runs": "reconciliation",
    "reconciliation_discrepancies": "reconciliation",
    # The merchant's own account object (its time zone): read with any read role, changed
    # with account:write (admin and standard keys), like the other settings' write scopes.
    "account": "account",
    "admin": "admin",
    "audit_log": "admin",
    "api_keys": "admin",
}
_READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def effective(stored: frozenset[str] | set[str] | list[str]) -> frozenset[str]:
    """The scopes a key holds. No stored scopes: a standard key. ``admin`` (the one scope
    keys had before roles) means the admin role."""
    granted = frozenset(stored)
    if not granted:
        return STANDARD
    if "admin" in granted:
        granted = (granted - {"admin"}) | ROLES["admin"]
    return granted


def required_scope(method: str, path: str) -> str | None:
    """The scope a request needs; ``None`` for paths outside the scoped resources."""
    parts = path.strip("/").split("/")
    if len(parts) < 2 or parts[0] != "v1":
        return None
    resource = _RESOURCE_OF_SEGMENT.get(parts[1])
    if resource is None:
        return None
    return f"{resource}:{'read' if method.upper() in _READ_METHODS else 'write'}"


def check_requested(scopes: list[str] | None, role: str | None) -> frozenset[str]:
    """The scopes to store for a new key from a role or an explicit list (not both);
    raises ``ValueError`` naming what is unknown."""
    if scopes is not None and role is not None:
        raise ValueError("pass either a role or scopes, not both")
    if role is not None:
        if role not in ROLES:
            raise ValueError(f"unknown role '{role}'; roles are {', '.join(ROLES)}")
        return ROLES[role]
    if scopes is None:
        return frozenset()
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; scopes are resource:read|write")
    if not scopes:
        raise ValueError("a restricted key needs at least one scope")
    return frozenset(scopes)


def role_of(granted: frozenset[str]) -> str | None:
    """The role whose scopes these are exactly, if any."""
    return next((name for name, bundle in ROLES.items() if bundle == granted), None)
