"""The pieces of the HTTP edge (``api/edge.py``, the one pure-ASGI middleware in front of
``Idempotency`` and the router): reading request headers and per-request state, sending an
error before any route runs, the request id, and the body guard, which buffers write
bodies so they can be size-checked, type-checked and hashed for idempotency before any
handler runs.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from paygrid.api.errors import error_response, public_url_of
from paygrid.domain.errors import InvalidRequest, PaygridError

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


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` when it is safe to echo, else a new ``req_...``."""
    incoming = header(scope, b"x-request-id")
    if incoming and _SAFE_REQUEST_ID.match(incoming):
        return incoming
    return f"req_{uuid.uuid4().hex}"


def control_character_in(path: str) -> bool:
    return _CONTROL_CHARACTER.search(path) is not None


def control_character_in_path() -> InvalidRequest:
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


async def read_body(
    scope: Scope, receive: Receive, max_body_bytes: int, max_json_depth: int = MAX_JSON_DEPTH
) -> bytes | PaygridError | None:
    """The whole body of a write request, once checked: its size, that a ``/v1`` body is
    UTF-8 JSON nested at most ``max_json_depth`` deep, and an empty ``/v1`` body read as
    ``{}`` (the headers say so too). Else the error to answer with, or ``None`` when the
    client went away."""
    declared = header(scope, b"content-length")
    if declared and declared.isdigit() and int(declared) > max_body_bytes:
        return _too_large(max_body_bytes)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_bytes:
            return _too_large(max_body_bytes)
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if not scope["path"].startswith("/v1/"):
        return body
    return _checked_api_body(scope, body, max_json_depth)


def _too_large(max_body_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request bodies are limited to {max_body_bytes} bytes.")


def _checked_api_body(scope: Scope, body: bytes, max_json_depth: int) -> bytes | PaygridError:
    raw_content_type = header(scope, b"content-type") or ""
    content_type = raw_content_type.split(";")[0].strip().lower()
    # Only an empty body means "no parameters": whitespace is a body, and must be JSON.
    if body and content_type != "application/json":
        return UnsupportedMediaType()
    # Provider webhooks are verified as bytes, then parsed.
    verified_later = scope["path"].startswith("/v1/provider_webhooks/")
    encoding_problem = None if verified_later else _encoding_problem(raw_content_type, body)
    if encoding_problem is not None:
        return InvalidRequest(encoding_problem, code="invalid_json")
    if (
        content_type == "application/json"
        and not verified_later
        and json_depth(body) > max_json_depth
    ):
        return JsonTooDeep(f"JSON bodies may nest at most {max_json_depth} levels deep.")
    if not body:
        scope["headers"] = [
            *[(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")],
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
        ]
        return b"{}"  # an empty POST (e.g. /cancel) means "no parameters"
    return body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the buffered ``body``, then defers to ``receive``."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
