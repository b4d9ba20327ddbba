"""Cursor pagination over ULID-prefixed ids, newest first, like Stripe's list endpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from paygrid.db.executor import Executor


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = 10
    starting_after: str | None = None
    ending_before: str | None = None


@dataclass(slots=True)
class Filters:
    """A WHERE clause built from fixed SQL fragments and positional arguments."""

    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, fragment: str, value: Any) -> None:
        """Add ``fragment`` with ``$?`` standing for ``value``'s position."""
        self.args.append(value)
        self.clauses.append(fragment.replace("$?", f"${len(self.args)}"))

    def add_if(self, fragment: str, value: Any) -> None:
        if value is not None:
            self.add(fragment, value)


async def fetch_page(
    conn: Executor, table: str, filters: Filters, page: PageRequest
) -> tuple[list[asyncpg.Record], bool]:
    """Return one page of ``table`` rows (newest first) and whether more exist beyond it."""
    where = Filters(list(filters.clauses), list(filters.args))
    ascending = page.ending_before is not None and page.starting_after is None
    if page.starting_after is not None:
        where.add("id < $?", page.starting_after)
    elif page.ending_before is not None:
        where.add("id > $?", page.ending_before)
    order = "ASC" if ascending else "DESC"
    where.args.append(page.limit + 1)
    sql = (
        f"SELECT * FROM {table} WHERE {' AND '.join(where.clauses) or 'TRUE'}"
        f" ORDER BY id {order} LIMIT ${len(where.args)}"
    )
    rows = list(await conn.fetch(sql, *where.args))
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if ascending:
        rows.reverse()
    return rows, has_more


def group_by(rows: list[asyncpg.Record], key: str) -> dict[str, list[asyncpg.Record]]:
    """Child rows (attempts, ...) by their parent's id, for rendering a page of parents."""
    grouped: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped
