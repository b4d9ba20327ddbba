"""Stripe-style idempotency for every POST under ``/v1``.

The first response to a key is stored (status and body) and replayed with
``Idempotent-Replayed: true``. A key is scoped to the merchant and mode, lives 24 h, and is
locked while its request runs: a concurrent duplicate gets 409, a different request with the
same key gets 422. If the process dies mid-request, the lock expires and the next retry
re-runs the handler, which resumes the work it finds recorded under the key.
"""

from __future__ import annotations

import hashlib
from typing import TypedDict

import asyncpg
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paygrid.api.middleware import header, send_error, state
from paygrid.db import idempotency as keys_db
from paygrid.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidRequest
from paygrid.services.context import Deps
from paygrid.services.merchants import Principal

MAX_KEY_LENGTH = 255


class ScopedKey(TypedDict):
    merchant_id: str
    livemode: bool
    key: str


# Results not saved, so a retry runs again: requests rejected before any work started.
UNSAVED_STATUSES = frozenset({400, 401, 403, 409, 413, 415, 429})


def request_fingerprint(method: str, path: str, body: bytes) -> bytes:
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).digest()


class Idempotency:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _deps(scope: Scope) -> Deps:
        deps: Deps = scope["app"].state.deps
        return deps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if (
            key is None
            or scope["method"] != "POST"
            or not scope["path"].startswith("/v1/")
            or scope["path"].startswith("/v1/provider_webhooks/")
        ):
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            await send_error(
                scope,
                send,
                InvalidRequest(
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
                    param="Idempotency-Key",
                    code="idempotency_key_invalid",
                ),
            )
            return
        deps = self._deps(scope)
        principal: Principal = state(scope)["principal"]
        scoped: ScopedKey = {
            "merchant_id": principal.merchant_id,
            "livemode": principal.livemode,
            # Publishable keys are public: their idempotency keys live in their own namespace,
            # so a browser can never replay (or probe) a secret-key request's stored response.
            "key": key if principal.kind == "secret" else f"publishable:{key}",
        }
        fingerprint = request_fingerprint(
            scope["method"], scope["path"], state(scope).get("body", b"")
        )
        claimed = await keys_db.claim(
            deps.bookkeeping_pool,
            **scoped,
            method=scope["method"],
            path=scope["path"],
            request_hash=fingerprint,
            ttl_hours=deps.settings.idempotency_ttl_hours,
        )
        if not claimed and not await _resolve_existing(deps, scope, send, scoped, fingerprint):
            return
        state(scope)["idempotency_key"] = key
        await self._run_and_store(deps.bookkeeping_pool, scope, receive, send, scoped)

    async def _run_and_store(
        self, pool: asyncpg.Pool, scope: Scope, receive: Receive, send: Send, scoped: ScopedKey
    ) -> None:
        captured: dict[str, int] = {"status": 500}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await keys_db.release(pool, **scoped)
            raise
        status = captured["status"]
        if status >= 500 or status in UNSAVED_STATUSES:
            await keys_db.release(pool, **scoped)
        else:
            await keys_db.complete(pool, **scoped, status=status, body=bytes(body))


async def _resolve_existing(
    deps: Deps, scope: Scope, send: Send, scoped: ScopedKey, fingerprint: bytes
) -> bool:
    """Answer a repeated key. True means this request should run (a dead lock was taken)."""
    lock_seconds = deps.settings.idempotency_lock_seconds
    stored = await keys_db.load(deps.bookkeeping_pool, **scoped, lock_seconds=lock_seconds)
    if stored is None:  # purged between the two statements: treat as in use, retry is safe
        await send_error(scope, send, IdempotencyKeyInUse())
        return False
    if stored.request_hash != fingerprint:
        await send_error(
            scope,
            send,
            IdempotencyKeyReused(
                "Keys for idempotent requests can only be used with the same path and "
                "parameters they were first used with.",
                param="Idempotency-Key",
            ),
        )
        return False
    if stored.response_status is not None:
        deps.metrics.replayed()
        await _replay(
            send,
            stored.response_status,
            stored.response_body or b"",
            state(scope).get("request_id"),
        )
        return False
    if stored.lock_expired and await keys_db.take_over(
        deps.bookkeeping_pool, **scoped, lock_seconds=lock_seconds
    ):
        return True
    await send_error(
        scope,
        send,
        IdempotencyKeyInUse(
            "A request with this idempotency key is still being processed. Retry later.",
        ),
    )
    return False


async def _replay(send: Send, status: int, body: bytes, request_id: str | None) -> None:
    """Send a stored response again. A stored error names the request that produced it; the
    replay names this request instead and, like Stripe, points to the first one in the
    ``Original-Request`` header."""
    headers = [(b"content-type", b"application/json"), (b"idempotent-replayed", b"true")]
    if status >= 400:
        payload = orjson.loads(body)
        original = payload.get("error", {}).get("request_id")
        if original:
            headers.append((b"original-request", str(original).encode()))
            payload["error"]["request_id"] = request_id
            body = orjson.dumps(payload)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
