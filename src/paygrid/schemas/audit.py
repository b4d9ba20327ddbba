"""Audit log entries as the API shows them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from paygrid.schemas.common import RowLike, unix


class AuditEntry(BaseModel):
    id: str = Field(examples=["aud_00000000000004d2"])
    object: Literal["audit_entry"] = "audit_entry"
    actor: str = Field(
        description="Who acted: `api_key:key_...`, `cli:<user>`, `job:<kind>` or `system`.",
        examples=["api_key:key_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"],
    )
    action: str = Field(examples=["payment.updated"])
    object_type: str = Field(examples=["payment"])
    object_id: str
    before: dict[str, Any] | None = Field(description="The object before; secrets left out.")
    after: dict[str, Any] | None = Field(description="The object after; secrets left out.")
    request_id: str | None
    ip: str | None
    livemode: bool
    created: int
    sealed: bool = Field(description="Chained into the merchant's hash chain yet.")
    hash: str | None = Field(
        description="The chain hash (hex) of the seal that covers this entry, once sealed."
    )
    redacted: bool = Field(description="Personal data in before/after was erased (GDPR).")

    @classmethod
    def from_row(cls, row: RowLike) -> AuditEntry:
        entry_hash = row["hash"]
        return cls(
            id=row["id"],
            actor=row["actor"],
            action=row["action"],
            object_type=row["object_type"],
            object_id=row["object_id"],
            before=row["before"],
            after=row["after"],
            request_id=row["request_id"],
            ip=row["ip"],
            livemode=row["livemode"],
            created=unix(row["created_at"]) or 0,
            sealed=entry_hash is not None,
            hash=bytes(entry_hash).hex() if entry_hash is not None else None,
            redacted=row["redacted_at"] is not None,
        )
