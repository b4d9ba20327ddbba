"""``LeanRoute``: an ``APIRoute`` for the hottest endpoints (``POST /v1/payments``) that
keeps everything FastAPI derives from the endpoint (path, OpenAPI, the body model, the
dependencies) and dispatches with less machinery.

Why our own dispatch: FastAPI's generic request handler solves the dependency graph per
request (each dependency's cache key, its kind of callable, the query, header and cookie
parameters it might want, two ``AsyncExitStack``s) and parses the body twice (``json.loads``,
then pydantic on the Python objects). For an endpoint whose parameters are only the
``Request``, path parameters, one body model and dependencies that take only the
``Request``, the same answers come from a loop over those dependencies, ``json.loads`` and
pydantic: a fifth fewer Python calls per confirmed payment. The shapes it accepts are checked when the
route is built, so an endpoint that needs more fails at start-up instead of being served
differently.

Errors are FastAPI's: a body that fails validation raises ``RequestValidationError`` with
the same ``("body", ...)`` locations, answered by the app's handler like any other route.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

RequestDependency = Callable[[Request], Awaitable[Any]]


class LeanRoute(APIRoute):
    """Use as ``route_class_override`` of an endpoint with the shape above. Only the
    route's own dependencies run: the ``/v1`` routers' one (``api/query.py``'s parameter
    check) has nothing to check on a request with a body model."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependencies = _request_only_dependencies(self.dependant)
        request_name = self.dependant.request_param_name
        path_names = tuple(field.name for field in self.dependant.path_params)
        _refuse_other_parameters(self.dependant, self.path)
        body: tuple[str, TypeAdapter[Any]] | None = None
        if self.body_field is not None and self.body_field.field_info.annotation is not None:
            body = (self.body_field.name, TypeAdapter(self.body_field.field_info.annotation))
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            values: dict[str, Any] = {}
            for name, call in dependencies:
                result = await call(request)
                if name is not None:
                    values[name] = result
            if request_name is not None:
                values[request_name] = request
            for name in path_names:
                values[name] = request.path_params[name]
            if body is not None:
                values[body[0]] = _validated(body[1], await request.body())
            response = await endpoint(**values)
            if not isinstance(response, Response):
                raise TypeError(f"LeanRoute endpoints return a Response, not {response!r}")
            return response

        return handle


def _validated(adapter: TypeAdapter[Any], body: bytes) -> Any:
    """The body as FastAPI reads it: no bytes is a missing body, anything else is parsed by
    ``json`` (``HttpEdge`` admits only JSON bodies on ``/v1``) and validated as Python
    objects, so the errors (types, messages, locations) are FastAPI's own."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", error.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": error.msg},
                }
            ]
        ) from None
    try:
        return adapter.validate_python(value, from_attributes=True)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**detail, "loc": ("body", *detail["loc"])}
                for detail in error.errors(include_url=False)
            ]
        ) from None


def _request_only_dependencies(
    dependant: Dependant,
) -> tuple[tuple[str | None, RequestDependency], ...]:
    found: list[tuple[str | None, RequestDependency]] = []
    for sub in dependant.dependencies:
        call = sub.call
        if (
            call is None
            or not inspect.iscoroutinefunction(call)
            or len(inspect.signature(call).parameters) != 1
            or sub.request_param_name is None
        ):
            raise TypeError(f"LeanRoute: dependency {call!r} must be `async def f(request)`")
        found.append((sub.name, call))
    return tuple(found)


def _refuse_other_parameters(dependant: Dependant, path: str) -> None:
    others = dependant.query_params or dependant.header_params or dependant.cookie_params
    if others or len(dependant.body_params) > 1 or not inspect.iscoroutinefunction(dependant.call):
        raise TypeError(f"LeanRoute {path}: only request, path parameters and one body model")
