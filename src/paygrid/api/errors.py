"""The one place where errors become HTTP responses."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from paygrid.domain.errors import (
    InvalidRequest,
    PaygridError,
    PermissionDenied,
    ResourceMissing,
    ServiceUnavailable,
)
from paygrid.schemas.catalog import PARAMETER_IMMUTABLE
from paygrid.schemas.common import CARD_NUMBER_IN_TEXT, TEXT_UNSTORABLE
from paygrid.services.health import DATABASE_OUTAGES, database_unreachable

log = structlog.get_logger("paygrid.api")


# Every code has a row in the Errors table of docs/api.md, which the server renders at
# /docs/api with each row's id set to its code (paygrid.web.docs), like Stripe's doc_url.
DOC_PATH = "/docs/api#"


def error_payload(
    error: PaygridError, request_id: str | None, public_url: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error.error_type,
        "code": error.code,
        "message": error.message,
        "param": error.param,
        "request_id": request_id,
        "doc_url": f"{public_url}{DOC_PATH}{error.code}",
    }
    body.update({k: v for k, v in error.extra.items() if v is not None})
    return {"error": body}


def error_response(error: PaygridError, request_id: str | None, public_url: str = "") -> Response:
    headers = (
        {"Retry-After": str(error.extra["retry_after"])} if "retry_after" in error.extra else None
    )
    return Response(
        orjson.dumps(error_payload(error, request_id, public_url)),
        status_code=error.status_code,
        media_type="application/json",
        headers=headers,
    )


# The embedded server is restarted within seconds; a managed database fails over in tens.
RETRY_AFTER_SECONDS = 5


def unexpected_error(error: Exception) -> PaygridError:
    """What an exception nothing else answered becomes: ``503 service_unavailable`` with
    Retry-After while the database cannot be reached (the client should retry), else the
    generic 500."""
    if database_unreachable(error):
        return ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS)
    return PaygridError("An internal error occurred. It has been logged; quote the request id.")


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def public_url_of(scope: Scope) -> str:
    """The server's public URL that ``install`` kept on the app, for ``doc_url``."""
    app = scope.get("app")
    return str(getattr(getattr(app, "state", None), "public_url", ""))


def _param_from_loc(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    parts = [p for p in parts if not p.startswith("function-")]
    if not parts:
        return None
    return parts[0] + "".join(f"[{p}]" for p in parts[1:])


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """Turn the first pydantic error into a Stripe-style error naming the parameter."""
    first = exc.errors()[0]
    kind = first.get("type", "")
    param = _param_from_loc(tuple(first.get("loc", ())))
    if kind == "json_invalid":
        return InvalidRequest("The request body is not valid JSON.", code="invalid_json")
    if kind == "missing":
        if param is None:
            return InvalidRequest("A JSON request body is required.", code="parameter_missing")
        return InvalidRequest(
            f"Missing required param: {param}.", param=param, code="parameter_missing"
        )
    if kind == "extra_forbidden":
        return InvalidRequest(
            f"Received unknown parameter: {param}.", param=param, code="parameter_unknown"
        )
    message = str(first.get("msg", "Invalid value"))
    if kind == PARAMETER_IMMUTABLE:  # a price's amount, currency, product or recurrence
        param = str(first.get("ctx", {}).get("param") or "") or param
        return InvalidRequest(message, param=param, code=PARAMETER_IMMUTABLE)
    if kind in (TEXT_UNSTORABLE, CARD_NUMBER_IN_TEXT):
        # Raised for a whole model or mapping, so the context names the parameter.
        param = str(first.get("ctx", {}).get("param") or "") or param
        code = "parameter_invalid" if kind == TEXT_UNSTORABLE else CARD_NUMBER_IN_TEXT
        return InvalidRequest(f"Invalid {param}: {message}.", param=param, code=code)
    code = "amount_invalid" if param == "amount" else "parameter_invalid"
    if param is None:
        return InvalidRequest(f"Invalid request body: {message}.", code="parameter_invalid")
    return InvalidRequest(f"Invalid {param}: {message}.", param=param, code=code)


def unreadable_body(cause: BaseException | None) -> InvalidRequest | None:
    """Name what made a body unparseable when FastAPI only says "error parsing the body"."""
    if isinstance(cause, UnicodeDecodeError):
        return InvalidRequest("The request body is not valid UTF-8.", code="invalid_json")
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return InvalidRequest(
            "The request body has an integer literal too long to read (more than 4300 digits).",
            code="invalid_json",
        )
    return None


def methods_served(app: Starlette, path: str) -> set[str]:
    """Every method some route serves at ``path``, and ``HEAD`` wherever ``GET`` is served
    (the HTTP edge, ``api/edge.py``, routes it as ``GET``)."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.router.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            methods |= route.methods or set()
    if "GET" in methods:
        methods.add("HEAD")
    return methods


def allowed_methods(request: Request) -> list[str]:
    """RFC 9110 requires the served methods in a 405's ``Allow``."""
    return sorted(methods_served(request.app, request.url.path))


def install(app: FastAPI, public_url: str = "") -> None:
    app.state.public_url = public_url

    @app.exception_handler(PaygridError)
    async def _paygrid(request: Request, exc: PaygridError) -> Response:
        if exc.status_code >= 500:
            log.warning("request.failed", code=exc.code, status=exc.status_code)
        return error_response(exc, request_id_of(request), public_url_of(request.scope))

    async def _unreachable(request: Request, exc: Exception) -> Response:
        error = unexpected_error(exc)
        if error.status_code != 503:  # not an outage (a bug): the last-resort 500
            raise exc
        log.warning("request.database_unavailable", error=type(exc).__name__)
        return error_response(error, request_id_of(request), public_url_of(request.scope))

    for unreachable in DATABASE_OUTAGES:
        app.add_exception_handler(unreachable, _unreachable)

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    async def _nul(request: Request, exc: asyncpg.CharacterNotInRepertoireError) -> Response:
        # PostgreSQL text cannot hold NUL and our own strings never do: a path or query
        # parameter carried it (bodies are refused earlier, by RequestModel).
        error = InvalidRequest(
            "Parameters may not contain the NUL character (%00).", code="parameter_invalid"
        )
        return error_response(error, request_id_of(request), public_url_of(request.scope))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(
            validation_error(exc), request_id_of(request), public_url_of(request.scope)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        error: PaygridError
        if exc.status_code == 404:
            error = ResourceMissing(
                f"Unrecognized request URL ({request.method} {request.url.path}).",
                code="url_invalid",
            )
        elif exc.status_code == 405:
            error = InvalidRequest(
                f"The method {request.method} is not allowed here.", code="method_not_allowed"
            )
            return Response(
                orjson.dumps(
                    error_payload(error, request_id_of(request), public_url_of(request.scope))
                ),
                status_code=405,
                media_type="application/json",
                headers={"Allow": ", ".join(allowed_methods(request))},
            )
        elif exc.status_code == 403:
            error = PermissionDenied(str(exc.detail))
        else:
            error = unreadable_body(exc.__cause__) or InvalidRequest(str(exc.detail))
        return error_response(error, request_id_of(request), public_url_of(request.scope))
