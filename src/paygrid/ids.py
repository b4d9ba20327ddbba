"""Object ids: a type prefix plus a ULID, so ids sort by creation time and say what they are."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"
