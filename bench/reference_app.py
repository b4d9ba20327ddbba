"""The reference endpoint for ``bench/payments.py``: the floor a payment request could cost.

A raw ASGI app with an asyncpg pool. ``POST /v1/payments`` performs the same row writes that
one paygrid ``POST /v1/payments`` (``confirm: true``, success card, fresh Idempotency-Key)
performs, against the same schema, in ONE transaction, with no authentication, validation,
state machine or models:

 1. claim the idempotency key          (INSERT idempotency_keys)
 2. tokenize the card                  (INSERT simulator.tokens)
 3. save the payment method            (INSERT payment_methods)
 4. create the payment, processing     (INSERT payments)
 5. open the authorize attempt         (INSERT payment_attempts)
 6. payment.created event              (INSERT events)
 7. the simulator's charge             (INSERT simulator.charges)
 8. finish the attempt, captured       (UPDATE payment_attempts)
 9. the payment succeeds               (UPDATE payments)
10. payment.succeeded event            (INSERT events)
11. store the response for the key     (UPDATE idempotency_keys)

The pool is built with paygrid's own ``pool_kwargs`` (jsonb codec, no reset on release), so
only the work done per request differs. ``GET /readyz`` answers 200 once the pool is open.

Environment: ``BENCH_DATABASE_URL`` (asyncpg URL), ``BENCH_MERCHANT_ID`` (an existing
merchant, for the foreign keys), optional ``BENCH_POOL_SIZE`` (default 32, paygrid's default) and
``BENCH_REFERENCE_COMMITS`` (1, the default: one transaction; 3: the same writes in the three
transactions paygrid commits, before the provider call, the provider's charge, the outcome) and
``BENCH_REFERENCE_SHAPE`` (with 3 commits: ``transactions``, the default, each a transaction of
its statements; ``statements``, each commit ONE statement of data-modifying ``WITH`` clauses and
the charge committed without waiting for the WAL flush, which is how paygrid commits them).

Run: ``python -m uvicorn --app-dir bench reference_app:app --workers N``.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Any

import asyncpg
import orjson
from starlette.types import Message, Receive, Scope, Send

from paygrid.db.engine import pool_kwargs
from paygrid.ids import new_id

PAYMENTS_PATH = "/v1/payments"
AMOUNT = 2000
CURRENCY = "USD"

INSERT_KEY = (
    "INSERT INTO idempotency_keys (merchant_id, livemode, key, request_method, request_path,"
    " request_hash, locked_at) VALUES ($1, false, $2, 'POST', $3, $4, now())"
)
INSERT_SIM_CARD = (
    "INSERT INTO simulator.tokens (id, brand, last4, exp_month, exp_year, behavior)"
    " VALUES ($1, 'visa', '4242', 12, 2034, 'succeed')"
)
INSERT_METHOD = (
    "INSERT INTO payment_methods (id, merchant_id, livemode, type, card_brand, card_last4,"
    " card_exp_month, card_exp_year, connector, connector_reference, metadata)"
    " VALUES ($1, $2, false, 'card', 'visa', '4242', 12, 2034, 'simulator', $3, $4)"
)
INSERT_PAYMENT = (
    "INSERT INTO payments (id, merchant_id, livemode, status, amount, currency, capture_method,"
    " payment_method_id, connector, reference, metadata, idempotency_key)"
    " VALUES ($1, $2, false, 'processing', $3, $4, 'automatic', $5, 'simulator', $6, $7, $8)"
)
INSERT_ATTEMPT = (
    "INSERT INTO payment_attempts (id, payment_id, operation, connector, status, amount,"
    " payment_method_id) VALUES ($1, $2, 'authorize', 'simulator', 'pending', $3, $4)"
)
INSERT_EVENT = (
    "INSERT INTO events (id, merchant_id, livemode, type, object_id, data)"
    " VALUES ($1, $2, false, $3, $4, $5)"
)
INSERT_CHARGE = (
    "INSERT INTO simulator.charges (id, idempotency_key, token_id, amount, currency, capture,"
    " status, amount_captured, return_url) VALUES ($1, $2, $3, $4, $5, true, 'captured', $4, $6)"
)
FINISH_ATTEMPT = (
    "UPDATE payment_attempts SET status = 'captured', provider_reference = $2, latency_ms = 0,"
    " completed_at = now() WHERE id = $1"
)
FINISH_PAYMENT = (
    "UPDATE payments SET status = 'succeeded', amount_received = $2, amount_capturable = 0,"
    " next_action = NULL, last_payment_error = NULL, updated_at = now() WHERE id = $1"
)
COMPLETE_KEY = (
    "UPDATE idempotency_keys SET response_status = 200, response_body = $3, locked_at = NULL"
    " WHERE merchant_id = $1 AND livemode = false AND key = $2"
)


def payment_snapshot(
    payment_id: str, attempt_id: str, method_id: str, reference: str, *, succeeded: bool
) -> dict[str, Any]:
    """A payment object of the same shape as paygrid's, for event payloads and the response."""
    now = int(time.time())
    return {
        "id": payment_id,
        "object": "payment",
        "amount": AMOUNT,
        "amount_capturable": 0,
        "amount_received": AMOUNT if succeeded else 0,
        "amount_refunded": 0,
        "currency": CURRENCY,
        "status": "succeeded" if succeeded else "processing",
        "capture_method": "automatic",
        "customer": None,
        "payment_method": method_id,
        "connector": "simulator",
        "description": None,
        "reference": reference,
        "order_id": None,
        "return_url": None,
        "metadata": {},
        "last_payment_error": None,
        "next_action": None,
        "cancellation_reason": None,
        "canceled_at": None,
        "attempts": [
            {
                "id": attempt_id,
                "object": "payment_attempt",
                "operation": "authorize",
                "connector": "simulator",
                "status": "captured" if succeeded else "pending",
                "amount": AMOUNT,
                "error_code": None,
                "decline_code": None,
                "error_message": None,
                "latency_ms": 0 if succeeded else None,
                "created": now,
                "completed": now if succeeded else None,
            }
        ],
        "livemode": False,
        "created": now,
    }


class ReferenceApp:
    """Raw ASGI app: ``POST /v1/payments`` (the writes above) and ``GET /readyz``."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.merchant_id = os.environ.get("BENCH_MERCHANT_ID", "")
        self.return_url = "http://127.0.0.1/payments/{}/return"
        # 1: every write in one transaction (the floor); 3: in paygrid's three transactions.
        self.commits = int(os.environ.get("BENCH_REFERENCE_COMMITS", "1"))
        # With 3 commits: "statements" makes each commit one statement (paygrid's shape).
        self.one_statement = os.environ.get("BENCH_REFERENCE_SHAPE") == "statements"
        # The charge's pool in that shape: commits without waiting for the WAL flush, as
        # paygrid's bookkeeping pool does (a later durable commit flushes it anyway).
        self.charge_pool: asyncpg.Pool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["method"] == "POST" and scope["path"] == PAYMENTS_PATH:
                await self._create_payment(scope, receive, send)
            elif scope["path"] == "/readyz":
                await _respond(send, 200 if self.pool else 503, b'{"status":"ready"}')
            else:
                await _respond(send, 404, b'{"error":"not found"}')

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get("BENCH_POOL_SIZE", "32"))
                self.pool = await asyncpg.create_pool(
                    os.environ["BENCH_DATABASE_URL"], **pool_kwargs(size)
                )
                if self.one_statement:
                    self.charge_pool = await asyncpg.create_pool(
                        os.environ["BENCH_DATABASE_URL"], **pool_kwargs(size, durable=False)
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in (self.pool, self.charge_pool):
                    if pool is not None:
                        await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _create_payment(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        key = _header(scope, b"idempotency-key") or new_id("key")
        merchant = self.merchant_id
        payment_id, attempt_id = new_id("pay"), new_id("att")
        method_id, token_id = new_id("pm"), new_id("simtok")
        charge_id, reference = new_id("ch_sim"), new_id("ref")
        created = payment_snapshot(payment_id, attempt_id, method_id, reference, succeeded=False)
        succeeded = payment_snapshot(payment_id, attempt_id, method_id, reference, succeeded=True)
        response = orjson.dumps(succeeded)
        assert self.pool is not None
        before_charge: list[tuple[str, tuple[Any, ...]]] = [
            (INSERT_KEY, (merchant, key, PAYMENTS_PATH, hashlib.sha256(body).digest())),
            (INSERT_SIM_CARD, (token_id,)),
            (INSERT_METHOD, (method_id, merchant, token_id, {})),
            (
                INSERT_PAYMENT,
                (payment_id, merchant, AMOUNT, CURRENCY, method_id, reference, {}, key),
            ),
            (INSERT_ATTEMPT, (attempt_id, payment_id, AMOUNT, method_id)),
            (
                INSERT_EVENT,
                (new_id("evt"), merchant, "payment.created", payment_id, {"object": created}),
            ),
        ]
        charge: list[tuple[str, tuple[Any, ...]]] = [
            (
                INSERT_CHARGE,
                (
                    charge_id,
                    attempt_id,
                    token_id,
                    AMOUNT,
                    CURRENCY,
                    self.return_url.format(payment_id),
                ),
            ),
        ]
        outcome: list[tuple[str, tuple[Any, ...]]] = [
            (FINISH_ATTEMPT, (attempt_id, charge_id)),
            (FINISH_PAYMENT, (payment_id, AMOUNT)),
            (
                INSERT_EVENT,
                (new_id("evt"), merchant, "payment.succeeded", payment_id, {"object": succeeded}),
            ),
            (COMPLETE_KEY, (merchant, key, response)),
        ]
        if self.commits == 1:
            await self._run(before_charge + charge + outcome)
        elif self.one_statement:
            assert self.charge_pool is not None
            await _run_as_one(self.pool, before_charge)
            await _run_as_one(self.charge_pool, charge)
            await _run_as_one(self.pool, outcome)
        else:
            # paygrid's shape: the payment is committed before the provider is called (so a
            # crash can never charge twice), the provider's charge is its own write, and the
            # outcome is committed after it.
            for step in (before_charge, charge, outcome):
                await self._run(step)
        await _respond(send, 200, response)

    async def _run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            for sql, args in statements:
                await conn.execute(sql, *args)


_PARAMETER = re.compile(r"\$(\d+)")
# Statement texts by the texts they combine: built once, like paygrid's (db/statements.py).
_COMBINED: dict[tuple[str, ...], str] = {}


async def _run_as_one(pool: asyncpg.Pool, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    """The statements as one: each a ``WITH`` clause, their parameters renumbered."""
    texts = tuple(sql for sql, _ in statements)
    combined = _COMBINED.get(texts)
    if combined is None:
        clauses, offset = [], 0
        for number, (sql, args) in enumerate(statements):
            clauses.append(f"w{number} AS ({_shifted(sql, offset)})")
            offset += len(args)
        combined = _COMBINED[texts] = "WITH " + ", ".join(clauses) + " SELECT 1"
    await pool.execute(combined, *(arg for _, args in statements for arg in args))


def _shifted(sql: str, offset: int) -> str:
    """``sql`` with its parameters ``$n`` renumbered ``$(n + offset)``."""

    def renumber(match: re.Match[str]) -> str:
        return f"${int(match.group(1)) + offset}"

    return _PARAMETER.sub(renumber, sql)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    more = True
    while more:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = ReferenceApp()
