"""Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware on the hot path).

``RequestContext`` is outermost: request ids, one structured log line per request, the
last-resort 500, URL paths with control characters refused, and ``HEAD`` answered wherever
``GET`` is (as ``GET`` without the body, RFC 9110). ``BodyGuard`` buffers write bodies so
they can be size-checked, type-checked and hashed for idempotency before any handler runs.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paygrid.api.errors import error_response, public_url_of, unexpected_error
from paygrid.db import audit as audit_db
from paygrid.domain.errors import InvalidRequest, PaygridError

log = structlog.get_logger("paygrid.http")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def state(scope: Scope) -> dict[str, Any]:
    return scope.setdefault("state", {})  # type: ignore[no-any-return]


async def send_error(scope: Scope, send: Send, error: PaygridError) -> None:
    response = error_response(error, state(scope).get("request_id"), public_url_of(scope))
    await response(scope, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else f"req_{uuid.uuid4().hex}"
        )
        state(scope)["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        client = scope.get("client")
        audit_db.begin_request(request_id, client[0] if client else None)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        method = scope["method"]
        if method == "HEAD":
            scope["method"] = "GET"  # routed, authorized and answered like GET; body dropped

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif method == "HEAD" and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            if _CONTROL_CHARACTER.search(scope["path"]):
                await send_error(scope, send_with_id, _control_character_in_path())
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as error:
            answer = unexpected_error(error)
            if answer.status_code == 503:  # the database is unreachable: no bug to trace
                log.warning("request.database_unavailable", error=type(error).__name__)
            else:
                log.exception("request.unhandled_error", method=method, path=scope["path"])
            if not status["sent"]:
                await send_error(scope, send_with_id, answer)
        finally:
            log.info(
                "request.completed",
                method=method,
                path=scope["path"],
                status=status["code"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def _control_character_in_path() -> InvalidRequest:
    return InvalidRequest(
        "The URL path contains a control character (such as %00 or %0A).",
        param="path",
        code="parameter_invalid",
    )


class PayloadTooLarge(PaygridError):
    """The request body is too large."""

    status_code = 413
    error_type = "invalid_request_error"
    default_code = "body_too_large"


class UnsupportedMediaType(PaygridError):
    """Request bodies must be JSON (Content-Type: application/json)."""

    status_code = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class JsonTooDeep(InvalidRequest):
    """The JSON body is nested too deeply."""

    default_code = "json_too_deep"


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body``, without parsing it (brackets inside
    strings do not count). Invalid JSON gets some number; the parser reports it later."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub(b"", body)):
        depth += 1 if bracket in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def _encoding_problem(content_type: str, body: bytes) -> str | None:
    """Why a JSON body cannot be read as UTF-8 (RFC 8259), or ``None``."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            return f"JSON bodies must be UTF-8; charset={charset} is not supported."
    try:
        body.decode()
    except UnicodeDecodeError as error:
        return (
            f"The request body is not valid UTF-8 (byte 0x{body[error.start]:02x} at offset "
            f"{error.start})."
        )
    return None


class BodyGuard:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_json_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_error(
                scope,
                send,
                PayloadTooLarge(f"Request bodies are limited to {self.max_body_bytes} bytes."),
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await send_error(
                    scope,
                    send,
                    PayloadTooLarge(f"Request bodies are limited to {self.max_body_bytes} bytes."),
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        raw_content_type = header(scope, b"content-type") or ""
        content_type = raw_content_type.split(";")[0].strip().lower()
        # Only an empty body means "no parameters": whitespace is a body, and must be JSON.
        if body and content_type != "application/json" and scope["path"].startswith("/v1/"):
            await send_error(scope, send, UnsupportedMediaType())
            return
        encoding_problem = (
            _encoding_problem(raw_content_type, body)
            if scope["path"].startswith("/v1/")
            and not scope["path"].startswith("/v1/provider_webhooks/")  # verified as bytes
            else None
        )
        if encoding_problem is not None:
            await send_error(scope, send, InvalidRequest(encoding_problem, code="invalid_json"))
            return
        if (
            content_type == "application/json"
            and scope["path"].startswith("/v1/")
            and not scope["path"].startswith("/v1/provider_webhooks/")  # verified, then parsed
            and json_depth(body) > self.max_json_depth
        ):
            await send_error(
                scope,
                send,
                JsonTooDeep(f"JSON bodies may nest at most {self.max_json_depth} levels deep."),
            )
            return
        if not body and scope["path"].startswith("/v1/"):
            body = b"{}"  # an empty POST (e.g. /cancel) means "no parameters"
            scope["headers"] = [
                *[
                    (k, v)
                    for k, v in scope["headers"]
                    if k not in (b"content-type", b"content-length")
                ],
                (b"content-type", b"application/json"),
                (b"content-length", b"2"),
            ]
        state(scope)["body"] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
