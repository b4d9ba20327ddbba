"""Parameters are part of the API contract: a ``/v1`` route refuses a query parameter it
does not declare, as request bodies refuse unknown fields, so a filter a client misspells
(or ports from Stripe without paygrid supporting it) fails loudly instead of returning an
unfiltered list. Operations that take no body refuse one that names fields."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from paygrid.domain.errors import InvalidRequest
from paygrid.schemas.common import unstorable

# Bodies carry a POST's parameters (RequestModel refuses unknown fields); the query string
# of every other method is checked here.
_BODY_METHODS = frozenset({"POST"})


def declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameter names a route takes, its dependencies' (pagination, ...) included."""
    return frozenset(_query_names(route.dependant))


def _query_names(dependant: Dependant) -> Iterator[str]:
    for field in dependant.query_params:
        yield field.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


async def only_declared_parameters(request: Request) -> None:
    """Dependency for the ``/v1`` routers: the first undeclared query parameter is a 400
    ``parameter_unknown`` naming it, ``expand`` a 400 ``parameter_invalid`` (paygrid
    returns related objects as ids and expands nothing, so ignoring it would be a lie), and
    so is a value with a control character, as in bodies. A POST without a declared body
    that is sent a JSON object with fields gets ``parameter_unknown`` for the first field."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    if request.method in _BODY_METHODS:
        if route.body_field is None:
            await _no_body_fields(request)
        return
    known = declared_query_parameters(route)
    for name, value in request.query_params.multi_items():
        if name == "expand" or name.startswith("expand["):
            raise InvalidRequest(
                "paygrid does not expand fields: related objects are returned as ids; "
                "retrieve them by id.",
                param=name,
            )
        if name not in known:
            raise InvalidRequest(
                f"Received unknown parameter: {name}.", param=name, code="parameter_unknown"
            )
        reason = unstorable(value)
        if reason is not None:
            raise InvalidRequest(f"Invalid {name}: {reason}.", param=name)


async def _no_body_fields(request: Request) -> None:
    body = await request.body()
    if not body.strip():
        return
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # the body's shape is the body guard's business; only named fields are ours
    if isinstance(parsed, dict) and parsed:
        name = str(next(iter(parsed)))
        raise InvalidRequest(
            f"Received unknown parameter: {name}. This operation takes no parameters.",
            param=name,
            code="parameter_unknown",
        )
