"""Build one SQL statement out of several writes (data-modifying ``WITH`` clauses), so a
change, its attempt and its outbox event commit together in a single round trip.

Table and column names always come from paygrid's own code, never from a client; values
are always bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Statement:
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def bind(self, value: Any, cast: str | None = None) -> str:
        self.args.append(value)
        return f"${len(self.args)}" + (f"::{cast}" if cast else "")

    def insert(
        self,
        name: str,
        table: str,
        values: dict[str, Any],
        *,
        after: str | None = None,
        on_conflict: str = "",
        returning: str = "1",
    ) -> None:
        """``name AS (INSERT ...)``; with ``after``, only when that clause produced a row."""
        columns = ", ".join(values)
        params = ", ".join(self.bind(v, _CASTS.get(k)) for k, v in values.items())
        source = f"SELECT {params} FROM {after}" if after else f"VALUES ({params})"
        self.clauses.append(
            f"{name} AS (INSERT INTO {table} ({columns}) {source} {on_conflict} RETURNING {returning})"
        )

    def update(self, name: str, table: str, changes: dict[str, Any], where: str) -> None:
        """``name AS (UPDATE table SET ... WHERE where)``; bind the values ``where`` uses
        with ``bind`` before calling this."""
        assignments = ", ".join(f"{k} = {self.bind(v, _CASTS.get(k))}" for k, v in changes.items())
        self.clauses.append(
            f"{name} AS (UPDATE {table} SET {assignments} WHERE {where} RETURNING 1)"
        )

    def sql(self, select: str) -> str:
        return "WITH " + ", ".join(self.clauses) + " " + select


# Parameters in INSERT ... SELECT lists get no type from the target column, so say them.
_CASTS = {
    "amount": "bigint",
    "livemode": "boolean",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "completed_at": "timestamptz",
    "canceled_at": "timestamptz",
    "data": "jsonb",
    "metadata": "jsonb",
    "last_payment_error": "jsonb",
    "next_action": "jsonb",
    "latency_ms": "integer",
    "payment_method_types": "text[]",
    "sync_count": "integer",
    "next_sync_at": "timestamptz",
    "card_exp_month": "smallint",
    "card_exp_year": "smallint",
    "amount_capturable": "bigint",
    "amount_received": "bigint",
}
