"""Advancing a test clock, as a job of the worker framework.

``POST /v1/test_clocks/{id}/advance`` makes the clock ``advancing`` and enqueues one
``test_clocks.advance`` job in the same transaction. The job walks the clock's time forward
through every moment at which billing work is due for the clock's customers, in order, and
runs the registered *steps* (``ClockAdvanceStep``: renewals, invoice finalization, charges,
...; ``bootstrap.CLOCK_ADVANCE_STEPS``) at each, on a clock that reads that moment. Then the
clock is ``ready`` at the target.

``frozen_time`` is committed at each moment before the steps run, so a job re-run after a
crash (its lease ran out, or it failed and is retried) resumes where the last one got to;
steps are idempotent. A job that fails on its last attempt leaves the clock
``internal_failure``; the periodic ``test_clocks.recover`` job does the same for a clock
whose job died without saying so (its worker was killed on the last attempt).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final, Protocol

import structlog

from paygrid.clock import FrozenClock
from paygrid.db import test_clocks as test_clocks_db
from paygrid.db.executor import Connection
from paygrid.db.test_clocks import TestClockRow
from paygrid.dependencies import Deps
from paygrid.domain.events import EventType
from paygrid.domain.test_clocks import TestClockStatus
from paygrid.schemas.test_clocks import TestClock
from paygrid.services.snapshots import emit_object
from paygrid.worker.registry import JobContext
from paygrid.worker.retry import RetryPolicy

log = structlog.get_logger("paygrid.billing")

ADVANCE: Final = "test_clocks.advance"
RECOVER: Final = "test_clocks.recover"
QUEUE: Final = "billing"
ADVANCE_RETRY: Final = RetryPolicy((1.0, 5.0, 30.0, 120.0))
# Rounds at one moment before the walk gives up: a step whose work stays due after it ran
# would otherwise loop for ever.
MAX_ROUNDS_AT_ONE_MOMENT: Final = 100
MAX_REASON_CHARS: Final = 500


class ClockAdvanceStep(Protocol):
    """One kind of billing work that runs on test clock time. Steps run in their registered
    order at every moment the walk stops at."""

    @property
    def name(self) -> str:
        """For logs: what the step does (``subscriptions.renew``)."""
        ...

    async def next_due(self, deps: Deps, clock_id: str) -> datetime | None:
        """The earliest moment at which this step has work not yet done for the customers of
        test clock ``clock_id`` (it may be at or before the clock's frozen time: work another
        step just created), or ``None`` when it has none."""
        ...

    async def run_until(self, deps: Deps, clock_id: str, moment: datetime) -> None:
        """Do this step's work due at or before ``moment`` for the clock's customers.
        ``deps.clock.now()`` reads ``moment``; pass ``deps`` on to the use cases called.
        Must be idempotent (a crashed walk repeats a moment). Afterwards ``next_due`` must
        be after ``moment`` (or ``None``) unless another step created work meanwhile."""
        ...


class ClockStalled(Exception):
    """A step's work stayed due after it ran, round after round, at the same moment."""


def advance_key(clock_id: str, target: datetime) -> str:
    """The advance job's unique key: one live job per clock and target."""
    return f"{ADVANCE}:{clock_id}:{int(target.timestamp())}"


def handler(
    steps: Sequence[ClockAdvanceStep],
) -> Callable[[dict[str, Any], JobContext], Awaitable[None]]:
    """The ``test_clocks.advance`` job handler running ``steps``."""
    registered = tuple(steps)

    async def advance(payload: dict[str, Any], context: JobContext) -> None:
        clock_id, target = str(payload["test_clock"]), int(payload["frozen_time"])
        try:
            await walk(context.deps, clock_id, registered, target=target)
        except Exception as error:
            if context.attempt >= ADVANCE_RETRY.max_attempts:
                await fail(context.deps, clock_id, f"{type(error).__name__}: {error}")
            raise

    return advance


def job_payload(clock_id: str, target: datetime) -> dict[str, Any]:
    """What the advance job of ``clock_id`` towards ``target`` is given."""
    return {"test_clock": clock_id, "frozen_time": int(target.timestamp())}


async def walk(
    deps: Deps, clock_id: str, steps: Sequence[ClockAdvanceStep], *, target: int | None = None
) -> None:
    """Move an advancing clock through every due moment up to its target, then make it
    ``ready``. Does nothing for a clock that is not advancing, or (given ``target``, Unix
    seconds) advancing elsewhere: a job re-run after its advance ended never walks the next."""
    row = await test_clocks_db.get_by_id(deps.pool, clock_id)
    if row is None or row.status is not TestClockStatus.ADVANCING or row.advancing_to is None:
        return
    if target is not None and int(row.advancing_to.timestamp()) != target:
        return
    goal, cursor, rounds = row.advancing_to, row.frozen_time, 0
    while (due := await _earliest_due(deps, clock_id, steps)) is not None and due <= goal:
        moment = max(due, cursor)
        rounds = rounds + 1 if moment == cursor else 1
        if rounds > MAX_ROUNDS_AT_ONE_MOMENT:
            raise ClockStalled(f"work stays due at {moment.isoformat()} on {clock_id}")
        if not await test_clocks_db.move_time(deps.pool, clock_id, moment):
            return  # no longer advancing
        cursor = moment
        at_moment = replace(deps, clock=FrozenClock(moment, deps.clock))
        for step in steps:
            log.debug("test_clock.step", test_clock=clock_id, step=step.name, moment=moment)
            await step.run_until(at_moment, clock_id, moment)
    await _settle(deps, clock_id, test_clocks_db.finish_advance, EventType.TEST_CLOCK_READY)


async def _earliest_due(
    deps: Deps, clock_id: str, steps: Sequence[ClockAdvanceStep]
) -> datetime | None:
    dues = [due for step in steps if (due := await step.next_due(deps, clock_id)) is not None]
    return min(dues, default=None)


async def fail(deps: Deps, clock_id: str, reason: str) -> None:
    """Leave an advancing clock ``internal_failure`` (with ``test_clock.internal_failure``)."""
    log.error("test_clock.internal_failure", test_clock=clock_id, reason=reason)

    async def failed(conn: Connection, failing: str) -> TestClockRow | None:
        return await test_clocks_db.fail_advance(conn, failing, reason[:MAX_REASON_CHARS])

    await _settle(deps, clock_id, failed, EventType.TEST_CLOCK_INTERNAL_FAILURE)


async def _settle(
    deps: Deps,
    clock_id: str,
    change: Callable[[Connection, str], Awaitable[TestClockRow | None]],
    event: EventType,
) -> None:
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await change(conn, clock_id)
        if row is not None:
            await emit_object(conn, row, event, TestClock.from_row(row).model_dump(mode="json"))


async def recover(_payload: dict[str, Any], context: JobContext) -> None:
    """Periodic: an advancing clock with no live advance job (its job died) fails."""
    for clock_id in await test_clocks_db.abandoned(context.deps.pool, ADVANCE):
        await fail(context.deps, clock_id, "the advance job stopped without finishing")
