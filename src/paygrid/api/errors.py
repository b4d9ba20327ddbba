"""The one place where errors become HTTP responses."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from paygrid.domain.errors import InvalidRequest, PaygridError, PermissionDenied, ResourceMissing

log = structlog.get_logger("paygrid.api")


def error_payload(error: PaygridError, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error.error_type,
        "code": error.code,
        "message": error.message,
        "param": error.param,
        "request_id": request_id,
    }
    body.update({k: v for k, v in error.extra.items() if v is not None})
    return {"error": body}


def error_response(error: PaygridError, request_id: str | None) -> Response:
    headers = (
        {"Retry-After": str(error.extra["retry_after"])} if "retry_after" in error.extra else None
    )
    return Response(
        orjson.dumps(error_payload(error, request_id)),
        status_code=error.status_code,
        media_type="application/json",
        headers=headers,
    )


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


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
    code = "amount_invalid" if param == "amount" else "parameter_invalid"
    if param is None:
        return InvalidRequest(f"Invalid request body: {message}.", code="parameter_invalid")
    return InvalidRequest(f"Invalid {param}: {message}.", param=param, code=code)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: RFC 9110 requires them in a 405's
    ``Allow``, and Starlette's own header names only the first matching route's."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(PaygridError)
    async def _paygrid(request: Request, exc: PaygridError) -> Response:
        if exc.status_code >= 500:
            log.warning("request.failed", code=exc.code, status=exc.status_code)
        return error_response(exc, request_id_of(request))

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    async def _nul(request: Request, exc: asyncpg.CharacterNotInRepertoireError) -> Response:
        # PostgreSQL text cannot hold NUL and our own strings never do: a path or query
        # parameter carried it (bodies are refused earlier, by RequestModel).
        error = InvalidRequest(
            "Parameters may not contain the NUL character (%00).", code="parameter_invalid"
        )
        return error_response(error, request_id_of(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(validation_error(exc), request_id_of(request))

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
                orjson.dumps(error_payload(error, request_id_of(request))),
                status_code=405,
                media_type="application/json",
                headers={"Allow": ", ".join(allowed_methods(request))},
            )
        elif exc.status_code == 403:
            error = PermissionDenied(str(exc.detail))
        else:
            error = InvalidRequest(str(exc.detail))
        return error_response(error, request_id_of(request))
