"""Which handler runs each job kind, with its retry policy, and which kinds run
periodically."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

from paygrid.db.jobs import DEFAULT_QUEUE
from paygrid.dependencies import Deps
from paygrid.worker.retry import DEFAULT_RETRY, RetryPolicy


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler gets besides its payload."""

    deps: Deps
    job_id: str
    attempt: int  # counted from 1; a handler may be re-run, so it must be idempotent
    worker_id: str


Handler: TypeAlias = Callable[[dict[str, Any], JobContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    retry: RetryPolicy


@dataclass(frozen=True, slots=True)
class Schedule:
    """A periodic kind: one live row per kind, re-queued ``every`` after each run."""

    kind: str
    every: timedelta
    queue: str


class JobRegistry:
    """Handlers by kind. A job whose kind has no handler here is marked dead."""

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}
        self._schedules: dict[str, Schedule] = {}

    def register(self, kind: str, handler: Handler, *, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        """Run ``handler`` for jobs of ``kind``, retrying failures on ``retry``'s schedule."""
        if kind in self._kinds:
            raise ValueError(f"job kind '{kind}' is already registered")
        self._kinds[kind] = JobKind(kind, handler, retry)

    def schedule(self, kind: str, *, every: timedelta, queue: str = DEFAULT_QUEUE) -> None:
        """Run the registered ``kind`` every ``every``, starting when a worker first starts."""
        if kind not in self._kinds:
            raise ValueError(f"register job kind '{kind}' before scheduling it")
        if every <= timedelta(0):
            raise ValueError("a schedule's interval must be positive")
        self._schedules[kind] = Schedule(kind, every, queue)

    def get(self, kind: str) -> JobKind | None:
        return self._kinds.get(kind)

    def schedules(self) -> list[Schedule]:
        return list(self._schedules.values())
