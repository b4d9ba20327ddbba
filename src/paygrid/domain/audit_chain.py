"""The audit log's hash chain, pure: each entry's digest covers what it records. Per
merchant, the chain starts with the entries sealed one by one before migration 0011 (each
entry's hash covers the previous hash and its digest) and goes on with seals of batches:
a seal keeps its entries' digests in id order, and its hash covers the previous hash and
the digest of those digests. Changing, dropping, inserting or reordering any sealed entry
breaks the chain at that entry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import orjson


class EntryLike(Protocol):
    """An audit row: a database record or a dict of the same columns."""

    def __getitem__(self, key: str, /) -> Any: ...


GENESIS: Final = b"\x00" * 32  # the "previous hash" of a merchant's first entry
DIGEST_SIZE: Final = 32
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


# The canonical form is, and must stay byte for byte, ``json.dumps(recorded, sort_keys=True,
# separators=(",", ":"), ensure_ascii=False).encode()``: every sealed chain was hashed over it.
# orjson.dumps(OPT_SORT_KEYS) writes the same bytes several times faster, but only for trees
# of exact dicts, lists, str, int, bool and None (tests/unit/test_audit_digest_canonical.py
# proves it for every code point, as key and as value, and the integer bounds). It writes
# floats differently (0.00001 for 1e-05, null for NaN and Infinity), serialises what
# json.dumps rejects or writes otherwise (UUID, Enum, dataclasses, datetimes, subclasses),
# and raises on ints beyond 64 bits, lone surrogates and keys that are not exact str. So a
# tree holding anything else, or nested deeper than orjson allows, is written by json.dumps,
# which keeps its bytes and its errors; an orjson error falls back to it too.
_EXACT_SCALARS: Final = frozenset({str, int, bool, type(None)})
_EXACT_VALUES: Final = _EXACT_SCALARS | {dict, list}
_ORJSON_DEPTH: Final = 200  # orjson refuses nesting deeper than 255; also stops at a cycle


def _orjson_exact(values: Collection[Any], depth: int = 0) -> bool:
    """Whether ``values`` and all they hold are of the exact types orjson writes as
    json.dumps does (dict keys are left to orjson, which refuses any but exact str)."""
    kinds = set(map(type, values))
    if kinds <= _EXACT_SCALARS:
        return True
    if not kinds <= _EXACT_VALUES or depth >= _ORJSON_DEPTH:
        return False
    for value in values:
        kind = type(value)
        if kind is dict:
            if not _orjson_exact(value.values(), depth + 1):
                return False
        elif kind is list and not _orjson_exact(value, depth + 1):
            return False
    return True


def canonical_json(recorded: dict[str, Any]) -> bytes:
    """``recorded`` as canonical JSON: sorted keys, no spaces, UTF-8 (see above)."""
    if _orjson_exact(recorded.values()):
        try:
            return orjson.dumps(recorded, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # an int beyond 64 bits, a lone surrogate, a key that is not a str
    canonical = json.dumps(recorded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return canonical.encode()


def digest(entry: EntryLike) -> bytes:
    """SHA-256 of the entry's recorded fields as canonical JSON (sorted keys, no spaces)."""
    recorded = {field: _plain(entry[field]) for field in RECORDED_FIELDS}
    return hashlib.sha256(canonical_json(recorded)).digest()


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


@dataclass(frozen=True, slots=True)
class Seal:
    """One sealed batch of a merchant's entries: those with ids after the previous seal's
    ``last_id`` up to ``last_id``, in id order."""

    seq: int
    first_id: str
    last_id: str
    entry_count: int
    entry_digests: bytes  # DIGEST_SIZE bytes per entry, in id order
    digest: bytes  # sha256(entry_digests)
    prev_hash: bytes
    hash: bytes  # sha256(prev_hash || digest)


def seal_batch(seq: int, prev_hash: bytes, entries: Sequence[EntryLike]) -> Seal:
    """Seal ``entries`` (id order, at least one) onto a chain whose last hash is
    ``prev_hash``."""
    entry_digests = b"".join(digest(entry) for entry in entries)
    batch_digest = hashlib.sha256(entry_digests).digest()
    return Seal(
        seq=seq,
        first_id=str(entries[0]["id"]),
        last_id=str(entries[-1]["id"]),
        entry_count=len(entries),
        entry_digests=entry_digests,
        digest=batch_digest,
        prev_hash=prev_hash,
        hash=link(prev_hash, batch_digest),
    )


def broken_seal(
    seal: Seal, entries: Sequence[EntryLike], expected: tuple[int, bytes], position: int
) -> BrokenLink | None:
    """Check one seal against the entries now stored in its range (id order): ``expected``
    is the seal's (seq, prev_hash) if the chain is whole, ``position`` the chain position
    of its first entry. A redacted entry (GDPR erasure) is checked against the digest it
    was sealed with, not re-hashed; its place still is."""
    expected_seq, expected_prev = expected
    if seal.seq != expected_seq:
        return BrokenLink(seal.first_id, position, f"seal {expected_seq} is missing")
    sealed = [
        seal.entry_digests[i : i + DIGEST_SIZE]
        for i in range(0, len(seal.entry_digests), DIGEST_SIZE)
    ]
    for offset, entry in enumerate(entries):
        entry_id = str(entry["id"])
        if offset >= len(sealed):
            return BrokenLink(entry_id, position + offset, f"not among seal {seal.seq}'s entries")
        if entry["redacted_at"] is None and digest(entry) != sealed[offset]:
            return BrokenLink(entry_id, position + offset, "content does not match its digest")
    if len(entries) != seal.entry_count or len(sealed) != seal.entry_count:
        return BrokenLink(
            seal.last_id,
            position + len(entries),
            f"seal {seal.seq} covers {seal.entry_count} entries, {len(entries)} are left",
        )
    if hashlib.sha256(seal.entry_digests).digest() != seal.digest:
        return BrokenLink(seal.first_id, position, f"seal {seal.seq}'s digest does not match")
    if seal.prev_hash != expected_prev:
        return BrokenLink(seal.first_id, position, f"seal {seal.seq}'s prev_hash does not match")
    if link(expected_prev, seal.digest) != seal.hash:
        return BrokenLink(seal.first_id, position, f"seal {seal.seq}'s hash does not match")
    return None
