"""Build one SQL statement out of several writes (data-modifying ``WITH`` clauses), so a
change, its attempt and its outbox event commit together in a single round trip.

Table and column names always come from paygrid's own code, never from a client; values
are always bound parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from paygrid.db.rows import column_names, row_values

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


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
        values: Mapping[str, Any],
        *,
        after: str | None = None,
        on_conflict: str = "",
        returning: str = "1",
    ) -> None:
        """``name AS (INSERT ...)``; with ``after``, only when that clause produced a row."""
        self.insert_columns(
            name,
            table,
            tuple(values),
            values.values(),
            after=after,
            on_conflict=on_conflict,
            returning=returning,
        )

    def insert_row(
        self,
        name: str,
        table: str,
        row: DataclassInstance,
        *,
        after: str | None = None,
        on_conflict: str = "",
    ) -> None:
        """``insert`` of a typed row: every field is a column (enums as their text)."""
        self.insert_columns(
            name, table, column_names(row), row_values(row), after=after, on_conflict=on_conflict
        )

    def insert_columns(
        self,
        name: str,
        table: str,
        columns: tuple[str, ...],
        values: Iterable[Any],
        *,
        after: str | None = None,
        on_conflict: str = "",
        returning: str = "1",
    ) -> None:
        """``insert`` with the columns and their values (in the same order) apart: the
        columns of a call site are fixed, so its clause's text is built once."""

        def text(*params: str) -> str:
            typed = ", ".join(_typed(p, column) for p, column in zip(params, columns, strict=True))
            source = f"SELECT {typed} FROM {after}" if after else f"VALUES ({typed})"
            return (
                f"{name} AS (INSERT INTO {table} ({', '.join(columns)}) {source} {on_conflict}"
                f" RETURNING {returning})"
            )

        key = ("insert", name, table, columns, after, on_conflict, returning)
        self.clause(key, values, text)

    def update(self, name: str, table: str, changes: Mapping[str, Any], where: str) -> None:
        """``name AS (UPDATE table SET ... WHERE where)``; bind the values ``where`` uses
        with ``bind`` before calling this."""
        columns = tuple(changes)

        def text(*params: str) -> str:
            assignments = ", ".join(
                f"{column} = {_typed(p, column)}" for p, column in zip(params, columns, strict=True)
            )
            return f"{name} AS (UPDATE {table} SET {assignments} WHERE {where} RETURNING 1)"

        self.clause(("update", name, table, columns, where), changes.values(), text)

    def clause(self, key: Hashable, values: Iterable[Any], text: Callable[..., str]) -> None:
        """Add a clause that binds ``values``: ``text`` builds it from their placeholders
        (``$n``), only the first time this statement shape (``key``, which must fix the
        text, and where the values start) is seen; later, the text is reused."""
        first = len(self.args) + 1
        self.args.extend(values)
        full_key = (key, first, len(self.args))
        clause = _CLAUSES.get(full_key)
        if clause is None:
            clause = text(*(f"${n}" for n in range(first, len(self.args) + 1)))
            if len(_CLAUSES) >= _MAX_CLAUSES:  # shapes come from code, so this is a guard
                _CLAUSES.clear()
            _CLAUSES[full_key] = clause
        self.clauses.append(clause)

    def sql(self, select: str) -> str:
        """The statement's text; the same string object for the same clauses, so the
        driver's statement cache finds it by a hash computed once."""
        key = (select, *self.clauses)
        text = _TEXTS.get(key)
        if text is None:
            text = "WITH " + ", ".join(self.clauses) + " " + select
            if len(_TEXTS) >= _MAX_CLAUSES:
                _TEXTS.clear()
            _TEXTS[key] = text
        return text


# Clause texts by shape (see ``Statement.clause``) and whole statements by their clauses:
# a statement's text is then made of the same string objects each time, instead of being
# formatted again for every payment.
_CLAUSES: dict[Hashable, str] = {}
_TEXTS: dict[tuple[str, ...], str] = {}
_MAX_CLAUSES: Final = 4096


def _typed(param: str, column: str) -> str:
    cast = _CASTS.get(column)
    return f"{param}::{cast}" if cast else param


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
    "off_session": "boolean",
    "mandate_data": "jsonb",
}
