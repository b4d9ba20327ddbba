"""Cursor pagination over ULID-prefixed ids, newest first, like Stripe's list endpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.domain.errors import InvalidRequest
from paygrid.domain.pagination import PageRequest as PageRequest  # re-exported

# Every paged list starts its filters with its owner, so that a cursor can be checked to
# name an object of the same merchant and mode.
OWNER_CLAUSES = ["merchant_id = $1", "livemode = $2"]


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
    """Return one page of ``table`` rows (newest first) and whether more exist beyond it.
    A cursor must name a row of ``table`` with the same owner (merchant and mode): anything
    else is refused, rather than silently paging from an arbitrary point."""
    assert filters.clauses[:2] == OWNER_CLAUSES, "a paged list filters by its owner first"
    await _check_cursor(conn, table, filters, page)
    where = Filters(list(filters.clauses), list(filters.args))
    where.add_if("created_at >= $?", page.created_from)
    where.add_if("created_at < $?", page.created_before)
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


async def _check_cursor(conn: Executor, table: str, filters: Filters, page: PageRequest) -> None:
    if page.starting_after is not None and page.ending_before is not None:
        raise InvalidRequest(
            "Pass starting_after or ending_before, not both.", param="ending_before"
        )
    param, cursor = (
        ("starting_after", page.starting_after)
        if page.starting_after is not None
        else ("ending_before", page.ending_before)
    )
    if cursor is None:
        return
    sql = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {' AND '.join(OWNER_CLAUSES)} AND id = $3)"
    if not await conn.fetchval(sql, *filters.args[:2], cursor):
        raise InvalidRequest(
            f"No such object in this list: '{cursor}'.", param=param, code="resource_missing"
        )


def group_by(rows: list[asyncpg.Record], key: str) -> dict[str, list[asyncpg.Record]]:
    """Child rows (attempts, ...) by their parent's id, for rendering a page of parents."""
    grouped: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped
