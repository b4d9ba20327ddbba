"""Access to what start-up wired into the app."""

from __future__ import annotations

from fastapi import Request

from paygrid.services.context import Deps


def deps_of(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def idempotency_key_of(request: Request) -> str | None:
    key: str | None = getattr(request.state, "idempotency_key", None)
    return key
