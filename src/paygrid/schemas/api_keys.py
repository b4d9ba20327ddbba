"""API keys as the API shows them: never the secret, except once when it is made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from paygrid.domain import scopes as scopes_domain
from paygrid.schemas.common import FreeText, RequestModel, not_both, unix

if TYPE_CHECKING:
    from paygrid.db.merchants import ApiKeyRow

Role = Literal["admin", "operator", "support", "viewer"]
# What scopes_domain.check_requested accepts: a non-empty list of known scopes.
_SCOPES_SCHEMA: dict[str, Any] = {
    "minItems": 1,
    "items": {"enum": sorted(scopes_domain.ALL_SCOPES)},
}


class ApiKeyCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            **not_both("role", "scopes"),
            # Only secret keys take a role or scopes.
            "if": {"required": ["type"], "properties": {"type": {"const": "publishable"}}},
            "then": {"properties": {"role": {"type": "null"}, "scopes": {"type": "null"}}},
            "examples": [{"name": "support desk", "role": "support"}],
        }
    )

    name: FreeText | None = Field(default=None, max_length=200)
    type: Literal["secret", "publishable"] = "secret"
    role: Role | None = Field(
        default=None,
        description="admin: everything; operator: payments and refunds; support: reading, "
        "plus refunds; viewer: reading only.",
    )
    scopes: list[str] | None = Field(
        default=None,
        max_length=12,
        description="Instead of a role: `resource:read|write` for payments, refunds, "
        "customers, webhooks, connector_accounts and admin.",
        examples=[["payments:read", "refunds:write"]],
        json_schema_extra=_SCOPES_SCHEMA,
    )


class ApiKey(BaseModel):
    id: str = Field(examples=["key_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["api_key"] = "api_key"
    type: Literal["secret", "publishable"]
    name: str | None
    last4: str = Field(description="The key's last four characters, shown as `…abcd`.")
    scopes: list[str] = Field(description="What the key may do (secret keys).")
    role: str | None = Field(description="The role whose scopes these are, if any.")
    secret: str | None = Field(
        default=None, description="The key itself: returned only by create and roll."
    )
    livemode: bool
    created: int
    last_used: int | None
    revoked: int | None

    @classmethod
    def from_row(cls, row: ApiKeyRow, secret: str | None = None) -> ApiKey:
        granted = scopes_domain.effective(row.scopes) if row.kind == "secret" else frozenset()
        return cls(
            id=row.id,
            type=row.kind,
            name=row.name,
            last4=f"…{row.last4}",
            scopes=sorted(granted),
            role=scopes_domain.role_of(granted) if granted else None,
            secret=secret,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
            last_used=unix(row.last_used_at),
            revoked=unix(row.revoked_at),
        )
