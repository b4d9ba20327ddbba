"""``HttpEdge``: everything every request passes before ``Idempotency`` and the router, in
one pure-ASGI middleware with one ``send`` wrapper (it replaced eight stacked layers; each
layer's logic lives on as a plain function or class beside it). In order:

1. A CORS preflight is answered at once (``api/security.py``), before anything else.
2. The request id (an echoed safe ``X-Request-Id`` or a new ``req_...``), the log and audit
   context, ``HEAD`` routed as ``GET`` (the body dropped), and one ``request.completed`` log
   line; any unhandled exception becomes the last-resort 500 (503 while the database is
   unreachable). A URL path with a control character is refused (400).
3. Telemetry (``observability/middleware.py``): the request's trace span and its latency
   by route template. Responses of step 2 alone (the 400 above, the last-resort answer)
   are not observed, as before the layers were folded.
4. The body guard (``api/middleware.py``), the per-IP rate limit, the API key and its
   permissions (``api/authentication.py``), then the per-key and per-customer limits
   (``api/rate_limits.py``).

Every response leaves with ``X-Request-Id``, the security headers and any CORS headers.
While ``paygrid restore`` fences writes, step 4 is swapped for a 503
``maintenance_restoring`` (``_fenced``); an open fence costs a request nothing but a
test of an int and an increment of ``in_flight`` (the requests that passed every check
and are not answered yet), which the restore waits to see reach 0 before it touches the
data.
"""

from __future__ import annotations

import time

import structlog
from limits.aio.storage import Storage
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paygrid.api.authentication import authenticate, needs_key
from paygrid.api.errors import unexpected_error
from paygrid.api.middleware import (
    WRITE_METHODS,
    control_character_in,
    control_character_in_path,
    read_body,
    replaying,
    request_id_of,
    send_error,
    state,
)
from paygrid.api.rate_limits import RateLimits
from paygrid.api.security import SecurityPolicy
from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.config import Settings
from paygrid.domain.errors import PaygridError, ServiceUnavailable
from paygrid.observability import tracing
from paygrid.observability.metrics import Metrics
from paygrid.observability.middleware import Telemetry
from paygrid.observability.paths import loggable_path
from paygrid.services import audit_actor
from paygrid.services.restore.fence import WriteFence

log = structlog.get_logger("paygrid.http")

MAINTENANCE_RESTORING = "maintenance_restoring"
# What a fenced process still answers: its probes (``/readyz`` says ``restoring``) and
# its metrics.
FENCE_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class _Answer:
    """What was sent so far: the status (500 until a response starts)."""

    __slots__ = ("sent", "status")

    def __init__(self) -> None:
        self.status = 500
        self.sent = False


class HttpEdge:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        metrics: Metrics,
        storage: Storage,
        clock: Clock = SYSTEM_CLOCK,
        fence: WriteFence | None = None,
    ) -> None:
        self.app = app
        self.security = SecurityPolicy(settings)
        self.telemetry = Telemetry(metrics)
        self.limits = RateLimits(settings, storage, clock)
        self.max_body_bytes = settings.max_body_bytes
        # The guard is swapped while ``paygrid restore`` fences (services/restore/fence.py),
        # so an open fence costs a request one test of an int and the in-flight count.
        self._guard = self._guarded
        self._retry_after = 0
        self.in_flight = 0
        if fence is not None:
            fence.on_change(self._fence_changed)
            fence.count(self._requests_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.security.is_preflight(scope):
            await self.security.preflight(scope, send)
            return
        extra, cors = self.security.headers_for(scope)
        path: str = scope["path"]
        method: str = scope["method"]
        request_id = request_id_of(scope)
        self._begin(scope, request_id)
        started = time.perf_counter()
        if method == "HEAD":
            scope["method"] = "GET"  # routed, authorized and answered like GET; body dropped
        answer = _Answer()
        id_header = (b"x-request-id", request_id.encode())

        async def respond(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.sent = True
                headers = [*message.get("headers", []), id_header]
                message["headers"] = self.security.finish(headers, extra, cors, path)
            elif method == "HEAD" and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            if control_character_in(path):
                await send_error(scope, respond, control_character_in_path())
            elif tracing.enabled():
                with tracing.request_span(scope) as span:
                    await self._observed(scope, receive, respond, answer, started, span)
            else:
                await self._observed(scope, receive, respond, answer, started, None)
        except Exception as error:
            await _last_resort(scope, respond, answer, error, method)
        finally:
            log.info(
                "request.completed",
                method=method,
                path=loggable_path(path),
                status=answer.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    @staticmethod
    def _begin(scope: Scope, request_id: str) -> None:
        state(scope)["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        client = scope.get("client")
        audit_actor.begin_request(request_id, client[0] if client else None)

    async def _observed(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        answer: _Answer,
        started: float,
        span: trace.Span | None,
    ) -> None:
        try:
            await self._guard(scope, receive, send)
        finally:
            self.telemetry.observe(scope, span, answer.status, started)

    def _fence_changed(self, retry_after: int | None) -> None:
        self._retry_after = retry_after or 0
        self._guard = self._guarded if retry_after is None else self._fenced

    def _requests_in_flight(self) -> int:
        return self.in_flight

    async def _fenced(self, scope: Scope, receive: Receive, send: Send) -> None:
        """While a restore replaces the database: probes and metrics answer, everything
        else (reads too: they would show data about to be replaced) is a 503."""
        if scope["path"] in FENCE_OPEN_PATHS:
            await self._guarded(scope, receive, send)
            return
        await send_error(
            scope,
            send,
            ServiceUnavailable(
                "paygrid is restoring its database from a backup; nothing was changed. "
                "Retry after the number of seconds in the Retry-After header.",
                code=MAINTENANCE_RESTORING,
                retry_after=self._retry_after,
            ),
        )

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in WRITE_METHODS:
            body = await read_body(scope, receive, self.max_body_bytes)
            if body is None:
                return  # the client went away
            if isinstance(body, PaygridError):
                await send_error(scope, send, body)
                return
            state(scope)["body"] = body
            receive = replaying(body, receive)
        refusal = await self.limits.for_ip(scope)
        if refusal is not None:
            await send_error(scope, send, refusal)
            return
        if needs_key(scope["path"]):
            try:
                principal = await authenticate(scope)
            except PaygridError as error:
                await send_error(scope, send, error)
                return
            refusal = await self.limits.for_key(scope, principal)
            if refusal is not None:
                await send_error(scope, send, refusal)
                return
        # What a raised fence waits for (the restore's drain): requests past every check.
        # The checks above wait (the body, the key's lookup), and the fence may have risen
        # meanwhile: tested again here, with no wait between the test and the count, so a
        # request the drain did not count never reaches the app.
        if self._retry_after and scope["path"] not in FENCE_OPEN_PATHS:
            await self._fenced(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _last_resort(
    scope: Scope, send: Send, answer: _Answer, error: Exception, method: str
) -> None:
    """An exception nothing else answered: logged, and answered if nothing was sent yet."""
    reply = unexpected_error(error)
    if reply.status_code == 503:  # the database is unreachable: no bug to trace
        log.warning("request.database_unavailable", error=type(error).__name__)
    else:
        log.exception("request.unhandled_error", method=method, path=scope["path"])
    if not answer.sent:
        await send_error(scope, send, reply)
