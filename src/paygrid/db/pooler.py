"""Connections through a pooler in transaction mode (PgBouncer ``pool_mode = transaction``,
``PAYGRID_DATABASE_POOLER=transaction``).

Such a pooler lends a server connection to a client for one transaction (or one statement
outside a transaction) and then to another client. Whatever lives in a *session* is shared
with strangers or lost between two statements of ours:

- asyncpg's named prepared statements: statement N, prepared on one server connection, is
  unknown on the next (``prepared statement "__asyncpg_stmt_1__" does not exist``) or, worse,
  another client's of the same name. The pools are created with ``statement_cache_size=0``:
  asyncpg then uses the unnamed statement, parsed and executed in one exchange (it flushes,
  it does not sync, between the two), so the pooler keeps the server for both.
- the audit context, which the default configuration keeps in session settings
  (``audit.apply_context``, ``set_config(..., false)`` in the pool's ``setup`` hook): behind
  the pooler it would land on whichever server connection ran it, and the audit triggers of a
  later transaction, on another one, would read another client's actor. Here nothing is
  set for the session; instead each top-level transaction sets the context for itself
  (``set_config(..., true)``) right after ``BEGIN``. Statements outside a transaction that
  carry their own context (``audit.context_clause``) are unaffected; any other audited
  write outside a transaction is recorded as ``system``, never as somebody else.
- ``synchronous_commit = off`` of the worker's and the bookkeeping pool, sent as a startup
  parameter by default: PgBouncer 1.18 refuses unknown startup parameters, so it is set per
  transaction (``SET LOCAL``) in the same statement as the audit context.
- ``LISTEN``: a notification reaches only the server connection that listens, which the
  pooler has lent to someone else by then. The process's LISTEN hub connects through
  ``PAYGRID_DATABASE_DIRECT_URL`` instead (``engine.create_listen_pool``); so do migrations.

All of this costs one round trip per transaction, and only with the pooler setting on: the
default configuration uses ``asyncpg.Connection`` and its setup hook unchanged."""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.transaction import Transaction

from paygrid.db import audit

# Audit context (and, for non-durable pools, asynchronous commit) for this transaction only.
_AUDITED = (
    "SELECT set_config('paygrid.actor', $1, true), set_config('paygrid.request_id', $2, true),"
    " set_config('paygrid.ip', $3, true)"
)
_ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"


class _TransactionScoped(Transaction):
    """``BEGIN``, then the transaction-local settings that a session would otherwise hold."""

    def __init__(self, connection: PooledConnection, *args: Any) -> None:
        super().__init__(connection, *args)
        self._pooled = connection

    async def start(self) -> None:
        connection = self._pooled
        top_level = not connection.is_in_transaction()  # a savepoint inherits its settings
        await super().start()
        if not top_level:
            return
        if connection.audited:
            actor, request_id, ip = audit.current.get()
            sql = _AUDITED + ("" if connection.durable else f", {_ASYNC_COMMIT}")
            await connection.execute(sql, actor or "", request_id or "", ip or "")
        elif not connection.durable:
            await connection.execute(f"SELECT {_ASYNC_COMMIT}")


class PooledConnection(asyncpg.Connection):
    """A connection behind a transaction-mode pooler: session state moves into each
    transaction (see the module's docstring). Subclassed per pool by ``connection_class``."""

    audited = True
    durable = True

    def transaction(self, **options: Any) -> Transaction:
        return _TransactionScoped(
            self,
            options.get("isolation"),
            options.get("readonly", False),
            options.get("deferrable", False),
        )


def connection_class(*, audited: bool, durable: bool) -> type[PooledConnection]:
    """The connection class of a pool with these properties."""
    return _CLASSES[(audited, durable)]


_CLASSES: dict[tuple[bool, bool], type[PooledConnection]] = {
    (a, d): type(
        f"PooledConnection_{int(a)}{int(d)}", (PooledConnection,), {"audited": a, "durable": d}
    )
    for a in (True, False)
    for d in (True, False)
}


def pool_kwargs(kwargs: dict[str, Any], *, audited: bool, durable: bool) -> dict[str, Any]:
    """``engine.pool_kwargs`` adapted to a transaction-mode pooler."""
    settings = dict(kwargs["server_settings"])
    settings.pop("synchronous_commit", None)  # set per transaction instead
    return kwargs | {
        "statement_cache_size": 0,
        "setup": None,  # no session settings: the audit context goes into each transaction
        "server_settings": settings,
        "connection_class": connection_class(audited=audited, durable=durable),
    }
