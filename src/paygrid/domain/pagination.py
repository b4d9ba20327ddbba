"""What a caller asks of a paged list: a value shared by the HTTP layers, the services and
the queries in ``db/`` (it lives here, below all of them, so none imports another for it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page of a list: its size, at most one cursor, and the ``created`` window shared by
    every list (``created_from`` inclusive, ``created_before`` exclusive)."""

    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
