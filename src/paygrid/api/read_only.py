"""``@read_only``: the marker of an endpoint that only reads (lists and reports), so it may be
served by the read replica (``PAYGRID_READ_DATABASE_URL``). The endpoint reads through
``reads_of(request)`` instead of ``deps_of(request)``.

An explicit marker rather than a rule on paths or methods, so that a route is read from the
replica only once someone has checked that it writes nothing: the replica's sessions are
read-only, and a write sent there would fail. The choice of database per request is
``services.read_replica.reads_for``: the replica only when it has caught up with the primary
(a client's read after its own write sees the write, whichever API process served the
write); if the replica fails during the read, the read is served again by the primary, so a
replica outage never answers 500. Without a replica the marker only hands over the usual
``Deps``.

Use it below the router's decorator::

    @router.get("", ...)
    @read_only
    async def list_things(request: Request, ...) -> Response:
        things = await service.list_things(reads_of(request), ...)
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from fastapi import Request

from paygrid.api.dependencies import deps_of
from paygrid.dependencies import Deps
from paygrid.services import read_replica

P = ParamSpec("P")
R = TypeVar("R")


def read_only(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Mark ``endpoint`` (which takes ``request: Request``) as read-only; FastAPI still sees
    its own signature (``functools.wraps``)."""

    @functools.wraps(endpoint)
    async def serve(*args: P.args, **kwargs: P.kwargs) -> R:
        request = kwargs["request"]
        assert isinstance(request, Request), "a @read_only endpoint takes `request: Request`"
        deps = deps_of(request)
        reads = await read_replica.reads_for(deps)
        request.state.reads = reads
        if not read_replica.on_replica(reads, deps):
            return await endpoint(*args, **kwargs)
        try:
            return await endpoint(*args, **kwargs)
        except Exception as error:
            if not read_replica.replica_failed(deps, error):
                raise
        # The replica failed mid-read: the primary answers.
        request.state.reads = read_replica.primary_reads(deps)
        return await endpoint(*args, **kwargs)

    serve.__paygrid_read_only__ = True  # type: ignore[attr-defined]
    return serve


def reads_of(request: Request) -> Deps:
    """The ``Deps`` a ``@read_only`` endpoint reads through (the replica's or the primary's)."""
    reads: Deps = request.state.reads
    return reads


def is_read_only(endpoint: Callable[..., object]) -> bool:
    """Whether ``endpoint`` carries the ``@read_only`` marker (for tests and docs)."""
    return getattr(endpoint, "__paygrid_read_only__", False) is True
