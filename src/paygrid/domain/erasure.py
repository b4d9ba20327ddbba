"""What erasing a customer's personal data (GDPR) removes from stored objects and snapshots.

Pure: given what is known about the person (their customer, payments and payment methods,
and the strings that identify them), redact any JSON value. Known objects lose their personal
fields; any other string that mentions the person is replaced by ``[erased]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ERASED = "[erased]"
# Keys whose values are ids and enums, never personal data (a customer named "payment" must
# not blank every "object": "payment").
_STRUCTURAL_KEYS = frozenset(
    {"id", "object", "type", "status", "currency", "customer", "payment", "payment_method"}
)


@dataclass(frozen=True, slots=True)
class PersonalData:
    customer_id: str
    payment_ids: frozenset[str]
    payment_method_ids: frozenset[str]
    needles: tuple[str, ...]  # the email, name, phone and receipt emails, as stored

    def pattern(self) -> re.Pattern[str] | None:
        """Matches a needle as a whole word, ignoring case ("Ada" in "Ada Lovelace", not in
        "Canada")."""
        words = sorted({n.strip() for n in self.needles if n.strip()}, key=len, reverse=True)
        if not words:
            return None
        return re.compile(
            r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE
        )

    def redact(self, value: Any) -> Any:
        """``value`` with this person's data removed; other data is left as it was."""
        return _redact(value, self, self.pattern())


def erased_metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """Keep the keys (they are the merchant's schema), drop the values."""
    return dict.fromkeys(metadata, ERASED)


def _redact(value: Any, person: PersonalData, pattern: re.Pattern[str] | None) -> Any:
    if isinstance(value, str):
        return ERASED if pattern is not None and pattern.search(value) else value
    if isinstance(value, list):
        return [_redact(item, person, pattern) for item in value]
    if not isinstance(value, dict):
        return value
    redacted = {
        key: item
        if key in _STRUCTURAL_KEYS and isinstance(item, str)
        else _redact(item, person, pattern)
        for key, item in value.items()
    }
    return _redact_known_object(redacted, person)


def _redact_known_object(obj: dict[str, Any], person: PersonalData) -> dict[str, Any]:
    kind, object_id = obj.get("object"), obj.get("id")
    if kind == "customer" and object_id == person.customer_id:
        return {**obj, "email": None, "name": None, "phone": None, "metadata": {}}
    if kind == "payment" and object_id in person.payment_ids:
        metadata = obj.get("metadata")
        return {
            **obj,
            "receipt_email": None,
            "description": None,
            "metadata": erased_metadata_values(metadata) if isinstance(metadata, dict) else {},
        }
    if kind == "payment_method" and object_id in person.payment_method_ids:
        return {**obj, "metadata": {}}
    return obj
