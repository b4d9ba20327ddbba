"""Stripe-style idempotency for every POST under ``/v1``.

The first response to a key is stored (status and body) and replayed with
``Idempotent-Replayed: true``. A key is scoped to the merchant and mode, lives 24 h, and is
locked while its request runs: a concurrent duplicate gets 409, a different request with the
same key gets 422. If the process dies mid-request, the lock expires and the next retry
re-runs the handler, which resumes the work it finds recorded under the key.

Authentication and permissions are checked before this middleware (by the HTTP edge,
``api/edge.py``), so a replay is refused exactly like a first request. A stored response is
replayed only to the API key that made it, or to another key of the merchant that holds
every scope that key held (the successor of a rolled key, an admin key): a key with fewer
rights never receives more through a replay. The response is stored before it is sent, so a
retry sent the moment the answer arrives finds it. A response that carries a secret is
stored sealed with the credential key ring, never in plaintext. For the requests in
``CLAIMED_BY_USE_CASE`` (creating a payment) the use case claims the key in its first
statement and stores the response in its last; a key it finds taken is resolved here.
"""

from __future__ import annotations

import hashlib

import asyncpg
import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paygrid.api.middleware import header, replaying, send_error, state
from paygrid.crypto import DecryptionFailed, KeyRing
from paygrid.dependencies import Deps
from paygrid.domain.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyOtherApiKey,
    IdempotencyKeyReused,
    IdempotencyResponseUnreadable,
    InvalidRequest,
    PaygridError,
)
from paygrid.services import idempotency_keys
from paygrid.services.idempotency_keys import (
    CLAIMED_BY_USE_CASE,
    ClaimRequest,
    IdempotencyClaim,
    IdempotencyClaimTaken,
    StoredKey,
    seal_context,
)
from paygrid.services.merchants import Principal

log = structlog.get_logger("paygrid.idempotency")
MAX_KEY_LENGTH = 255
# Top-level response fields that hold a secret shown once (API keys, webhook signing
# secrets): a body with one of them set is stored sealed.
SECRET_FIELDS = ("secret", "client_secret")
_SECRET_MARKERS = tuple(f'"{field}":"'.encode() for field in SECRET_FIELDS)
# Objects that are a secret shown once as a whole: a billing portal session (its url carries
# the token whose hash alone is kept).
_SECRET_OBJECTS = (b'"object":"billing_portal.session"',)


# Results not saved, so a retry runs again: requests rejected before any work started.
UNSAVED_STATUSES = frozenset({400, 401, 403, 409, 413, 415, 429})


def request_fingerprint(method: str, path: str, body: bytes) -> bytes:
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).digest()


def valid_key(key: str) -> bool:
    """1 to 255 printable ASCII characters: no NUL or other control character reaches the
    database or a log line."""
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(" " <= c <= "~" for c in key)


def carries_secret(body: bytes) -> bool:
    """Whether a JSON response body has a secret at its top level."""
    if any(marker in body for marker in _SECRET_OBJECTS):
        return True
    if not any(marker in body for marker in _SECRET_MARKERS):
        return False  # the common case: no parse
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return True  # cannot tell: keep it sealed
    return isinstance(payload, dict) and any(payload.get(f) for f in SECRET_FIELDS)


def _seal_context(request: ClaimRequest) -> str:
    return seal_context(request.merchant_id, request.livemode, request.key)


def may_replay(stored: StoredKey, principal: Principal) -> bool:
    """A stored response goes to the key that made it, or to a key holding all its scopes."""
    if stored.api_key_id is None or stored.api_key_id == principal.key_id:
        return True
    return stored.api_key_scopes is not None and stored.api_key_scopes <= principal.scopes


def _claim_request(scope: Scope, key: str, principal: Principal) -> ClaimRequest:
    return ClaimRequest(
        merchant_id=principal.merchant_id,
        livemode=principal.livemode,
        # Publishable keys are public: their idempotency keys live in their own namespace,
        # so a browser can never replay (or probe) a secret-key request's stored response.
        key=key if principal.kind == "secret" else f"publishable:{key}",
        method=scope["method"],
        path=scope["path"],
        request_hash=request_fingerprint(
            scope["method"], scope["path"], state(scope).get("body", b"")
        ),
        api_key_id=principal.key_id,
        api_key_scopes=principal.scopes,
    )


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
        if not valid_key(key):
            await send_error(
                scope,
                send,
                InvalidRequest(
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
                    "(no control characters).",
                    param="Idempotency-Key",
                    code="idempotency_key_invalid",
                ),
            )
            return
        deps = self._deps(scope)
        principal: Principal = state(scope)["principal"]
        claim = IdempotencyClaim(_claim_request(scope, key, principal))
        state(scope)["idempotency_key"] = key
        if (scope["method"], scope["path"]) in CLAIMED_BY_USE_CASE:
            state(scope)["idempotency_claim"] = claim
            try:
                await self._run_and_store(
                    deps, scope, replaying(state(scope).get("body", b""), receive), send, claim
                )
                return
            except IdempotencyClaimTaken:
                # The key exists: resolve it like any other request's. (The run that found
                # it read the buffered body; a re-run is handed it afresh.)
                receive = replaying(state(scope).get("body", b""), receive)
        if not await self._claim(deps, scope, send, claim, principal):
            return
        await self._run_and_store(deps, scope, receive, send, claim)

    async def _claim(
        self, deps: Deps, scope: Scope, send: Send, claim: IdempotencyClaim, principal: Principal
    ) -> bool:
        """Claim the key here; answer a repeated one. True means the request should run."""
        ttl = deps.settings.idempotency_ttl_hours
        now = deps.clock.now()
        if await idempotency_keys.claim(
            deps.bookkeeping_pool, claim.request, ttl_hours=ttl, now=now
        ):
            claim.held = True
            return True
        if await _resolve_existing(deps, scope, send, claim.request, principal):
            claim.held = True
            return True
        return False

    async def _run_and_store(
        self, deps: Deps, scope: Scope, receive: Receive, send: Send, claim: IdempotencyClaim
    ) -> None:
        """Run the request, store its result, then send it: a retry sent the instant the
        answer arrives must find the result stored, not the key still locked."""
        pool = deps.bookkeeping_pool
        start: Message | None = None
        body = bytearray()

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await self.app(scope, receive, hold)
        except BaseException:
            if claim.ours:
                await idempotency_keys.release(pool, claim.request)
            raise
        status = 500 if start is None else int(start["status"])
        if claim.completed_body is not None:
            pass  # the use case stored this response in its last write
        elif status >= 500 or status in UNSAVED_STATUSES:
            if claim.ours:
                await idempotency_keys.release(pool, claim.request)
        elif claim.ours or await idempotency_keys.claim(
            pool,
            claim.request,
            ttl_hours=deps.settings.idempotency_ttl_hours,
            now=deps.clock.now(),
        ):
            # (Not ours: the use case answered before claiming, e.g. a 404; keep the answer
            # unless another request took the key meanwhile.)
            await _complete(pool, deps.keys, claim.request, status, bytes(body))
        if start is not None:
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})


async def _complete(
    pool: asyncpg.Pool, keys: KeyRing, request: ClaimRequest, status: int, body: bytes
) -> None:
    if carries_secret(body):
        sealed = keys.encrypt(body.decode(), context=_seal_context(request))
        await idempotency_keys.complete(pool, request, status=status, body=None, sealed=sealed)
    else:
        await idempotency_keys.complete(pool, request, status=status, body=body, sealed=None)


async def _resolve_existing(
    deps: Deps,
    scope: Scope,
    send: Send,
    request: ClaimRequest,
    principal: Principal,
) -> bool:
    """Answer a repeated key. True means this request should run (a dead lock was taken)."""
    lock_seconds = deps.settings.idempotency_lock_seconds
    now = deps.clock.now()
    stored = await idempotency_keys.load(
        deps.bookkeeping_pool, request, lock_seconds=lock_seconds, now=now
    )
    if stored is None:  # purged between the two statements: treat as in use, retry is safe
        await send_error(scope, send, IdempotencyKeyInUse())
        return False
    if not may_replay(stored, principal):
        await send_error(
            scope,
            send,
            IdempotencyKeyOtherApiKey(
                "This idempotency key was first used by another API key, which has "
                "permissions this key lacks. Use a new key.",
                param="Idempotency-Key",
            ),
        )
        return False
    if stored.request_hash != request.request_hash:
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
        try:
            body = _stored_body(deps.keys, stored, request)
        except PaygridError as error:
            await send_error(scope, send, error)
            return False
        deps.metrics.replayed()
        await _replay(send, stored.response_status, body, state(scope).get("request_id"))
        return False
    if stored.lock_expired and await idempotency_keys.take_over(
        deps.bookkeeping_pool, request, lock_seconds=lock_seconds, now=now
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


def _stored_body(keys: KeyRing, stored: StoredKey, request: ClaimRequest) -> bytes:
    if stored.response_body_sealed is None:
        return stored.response_body or b""
    try:
        return keys.decrypt(stored.response_body_sealed, context=_seal_context(request)).encode()
    except DecryptionFailed:
        # The key that sealed it left the ring within the key's lifetime (see docs/api.md).
        log.error("idempotency.undecryptable_response", merchant_id=request.merchant_id)
        raise IdempotencyResponseUnreadable(
            "The stored response to this idempotency key can no longer be read (it was "
            "encrypted under a key that was removed). Use a new idempotency key.",
            param="Idempotency-Key",
        ) from None


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
