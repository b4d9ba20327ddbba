"""The audit log's hash chain, pure: each entry's digest covers what it records, and each
entry's hash covers the previous entry's hash and its own digest, per merchant. Changing,
dropping or reordering any sealed entry breaks every hash after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol


class EntryLike(Protocol):
    """An audit row: a database record or a dict of the same columns."""

    def __getitem__(self, key: str, /) -> Any: ...


GENESIS: Final = b"\x00" * 32  # the "previous hash" of a merchant's first entry
# What an entry's digest covers: everything it records, not the chain fields.
RECORDED_FIELDS: Final = (
    "id",
    "merchant_id",
    "livemode",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "ip",
    "created_at",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def digest(entry: EntryLike) -> bytes:
    """SHA-256 of the entry's recorded fields as canonical JSON (sorted keys, no spaces)."""
    recorded = {field: _plain(entry[field]) for field in RECORDED_FIELDS}
    canonical = json.dumps(recorded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


def link(prev_hash: bytes, entry_digest: bytes) -> bytes:
    return hashlib.sha256(prev_hash + entry_digest).digest()


@dataclass(frozen=True, slots=True)
class BrokenLink:
    entry_id: str
    seq: int
    reason: str


def first_broken_link(entries: Iterable[EntryLike]) -> BrokenLink | None:
    """Walk one merchant's sealed entries in ``seq`` order; the first that does not verify.
    A redacted entry (GDPR erasure) keeps the digest it was sealed with: its content is not
    re-hashed, but its place in the chain still is."""
    expected_prev = GENESIS
    expected_seq = 1
    for entry in entries:
        entry_id, seq = str(entry["id"]), int(entry["seq"])
        if seq != expected_seq:
            return BrokenLink(entry_id, seq, f"sequence jumps from {expected_seq - 1} to {seq}")
        if bytes(entry["prev_hash"]) != expected_prev:
            return BrokenLink(entry_id, seq, "prev_hash does not match the previous entry")
        if entry["redacted_at"] is None and digest(entry) != bytes(entry["digest"]):
            return BrokenLink(entry_id, seq, "content does not match its digest")
        if link(expected_prev, bytes(entry["digest"])) != bytes(entry["hash"]):
            return BrokenLink(entry_id, seq, "hash does not match prev_hash and digest")
        expected_prev = bytes(entry["hash"])
        expected_seq += 1
    return None
