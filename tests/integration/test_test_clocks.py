"""Test clocks over HTTP against the real worker: create, advance (forward only, one at a
time, run by the ``test_clocks.advance`` job through every due moment of the registered
billing steps), ready, events, test mode only, tenant isolation, deletion with the clock's
customers, and the clock a customer's objects run on (``clock_for_customer``).

The billing steps here are fakes that record when they were called: subscriptions plug
their real steps into ``bootstrap.CLOCK_ADVANCE_STEPS``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.bootstrap import standard_registry
from paygrid.clock import FakeClock
from paygrid.db import jobs as jobs_db
from paygrid.dependencies import Deps
from paygrid.services.billing import clock_advance
from paygrid.services.billing.clock_advance import ClockAdvanceStep
from paygrid.services.billing.clocks import (
    clock_for_customer,
    clock_for_test_clock,
    deps_for_customer,
)
from paygrid.services.merchants import NewMerchant
from paygrid.worker.registry import JobContext
from paygrid.worker.runner import Worker
from tests.conftest import Api
from tests.integration.test_payment_method_ownership import saved_card
from tests.integration.worker_harness import eventually, running

T0 = datetime(2030, 1, 31, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass
class Schedule:
    """A fake billing step: work due at given moments per clock. Each run records the
    clock, the moment, and what the step's clock and the clock's customers' clock read."""

    name: str = "test.schedule"
    due: dict[str, list[datetime]] = field(default_factory=dict)
    calls: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    customer: str | None = None
    customer_times: list[datetime] = field(default_factory=list)
    failures: int = 0  # the next N runs raise
    crash_at: datetime | None = None  # the first run at this moment raises (a crash)

    async def next_due(self, deps: Deps, clock_id: str) -> datetime | None:
        return min(self.due.get(clock_id, []), default=None)

    async def run_until(self, deps: Deps, clock_id: str, moment: datetime) -> None:
        if clock_id not in self.due:
            return
        self.calls.append((clock_id, moment, deps.clock.now()))
        if self.customer is not None:
            self.customer_times.append((await clock_for_customer(deps, self.customer)).now())
        if self.failures or moment == self.crash_at:
            self.failures, self.crash_at = max(0, self.failures - 1), None
            raise RuntimeError("the step crashed")
        self.due[clock_id] = [d for d in self.due[clock_id] if d > moment]

    def moments(self, clock_id: str) -> list[datetime]:
        return [moment for clock, moment, _ in self.calls if clock == clock_id]


@asynccontextmanager
async def billing_worker(deps: Deps, *steps: ClockAdvanceStep) -> AsyncIterator[Worker]:
    """The standard registry's worker on the billing queue, advancing clocks with ``steps``."""
    async with running(deps, standard_registry(clock_steps=steps), clock_advance.QUEUE) as worker:
        yield worker


async def create_clock(api: Api, frozen: datetime = T0, **fields: Any) -> dict[str, Any]:
    answer = await api.post("/v1/test_clocks", {"frozen_time": unix(frozen), **fields})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def advance(api: Api, clock_id: str, to: datetime) -> httpx.Response:
    return await api.post(f"/v1/test_clocks/{clock_id}/advance", {"frozen_time": unix(to)})


async def until_ready(api: Api, clock_id: str, status: str = "ready") -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def settled() -> bool:
        seen.append((await api.get(f"/v1/test_clocks/{clock_id}")).json())
        return bool(seen[-1]["status"] == status)

    await eventually(settled)
    return seen[-1]


async def event_types(pool: asyncpg.Pool, object_id: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM events WHERE object_id = $1 ORDER BY id", object_id)
    return [r["type"] for r in rows]


async def test_a_clock_advances_to_ready_with_its_events(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    created = await create_clock(api, name="Annual plan")
    assert created["object"] == "test_clock" and created["id"].startswith("clock_")
    assert (created["status"], created["frozen_time"], created["name"]) == (
        "ready",
        unix(T0),
        "Annual plan",
    )
    assert created["livemode"] is False and created["status_details"] == {"advancing": None}
    assert created["deletes_after"] - created["created"] == 30 * 86400
    target = T0 + 40 * DAY
    started = await advance(api, created["id"], target)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "advancing"
    assert started.json()["frozen_time"] == unix(T0)
    assert started.json()["status_details"] == {"advancing": {"target_frozen_time": unix(target)}}
    async with billing_worker(deps):
        ready = await until_ready(api, created["id"])
    assert (ready["frozen_time"], ready["status_details"]) == (unix(target), {"advancing": None})
    assert await event_types(pool, created["id"]) == [
        "test_clock.created",
        "test_clock.advancing",
        "test_clock.ready",
    ]
    listed = (await api.get("/v1/test_clocks")).json()
    assert [c["id"] for c in listed["data"]] == [created["id"]]
    assert listed["data"][0] == ready


async def test_a_clock_never_goes_backwards_or_stays(api: Api) -> None:
    clock = await create_clock(api)
    for target in (T0 - timedelta(seconds=1), T0):
        refused = await advance(api, clock["id"], target)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["param"]) == ("frozen_time_not_after_current", "frozen_time")
    unchanged = (await api.get(f"/v1/test_clocks/{clock['id']}")).json()
    assert (unchanged["status"], unchanged["frozen_time"]) == ("ready", unix(T0))


async def test_live_keys_get_no_test_clocks(
    client: httpx.AsyncClient, merchant: NewMerchant, api: Api
) -> None:
    live = Api(client, merchant.key("secret", livemode=True))
    clock = await create_clock(api)
    answers = [
        await live.post("/v1/test_clocks", {"frozen_time": unix(T0)}),
        await live.get("/v1/test_clocks"),
        await live.get(f"/v1/test_clocks/{clock['id']}"),
        await advance(live, clock["id"], T0 + DAY),
        await live.delete(f"/v1/test_clocks/{clock['id']}"),
        await live.post("/v1/customers", {"test_clock": clock["id"]}),
    ]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [
        (400, "test_mode_only")
    ] * len(answers)


async def test_a_merchant_sees_only_its_own_clocks(
    api: Api, client: httpx.AsyncClient, other_merchant: NewMerchant
) -> None:
    clock = await create_clock(api)
    other = Api(client, other_merchant.key("secret", livemode=False))
    answers = [
        await other.get(f"/v1/test_clocks/{clock['id']}"),
        await advance(other, clock["id"], T0 + DAY),
        await other.delete(f"/v1/test_clocks/{clock['id']}"),
    ]
    assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [
        (404, "resource_missing")
    ] * 3
    assert (await other.get("/v1/test_clocks")).json()["data"] == []
    joined = await other.post("/v1/customers", {"test_clock": clock["id"]})
    assert joined.status_code == 400
    assert (joined.json()["error"]["code"], joined.json()["error"]["param"]) == (
        "resource_missing",
        "test_clock",
    )
    assert (await api.get(f"/v1/test_clocks/{clock['id']}")).json()["status"] == "ready"


async def test_two_advances_at_once_move_the_clock_once(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    clock = await create_clock(api)
    schedule = Schedule(due={clock["id"]: [T0 + DAY, T0 + 2 * DAY]})
    first, second = await asyncio.gather(
        advance(api, clock["id"], T0 + 3 * DAY), advance(api, clock["id"], T0 + 5 * DAY)
    )
    answers = sorted([first, second], key=lambda a: a.status_code)
    assert [a.status_code for a in answers] == [200, 409], [a.text for a in answers]
    refused = answers[1].json()["error"]
    assert (refused["code"], refused["current_status"]) == ("test_clock_advancing", "advancing")
    target = answers[0].json()["status_details"]["advancing"]["target_frozen_time"]
    jobs = await pool.fetchval(
        "SELECT count(*) FROM jobs WHERE kind = $1 AND payload->>'test_clock' = $2",
        clock_advance.ADVANCE,
        clock["id"],
    )
    assert jobs == 1
    # Still advancing until a worker runs it: a third advance and a delete wait too.
    again = await advance(api, clock["id"], T0 + 9 * DAY)
    assert again.json()["error"]["code"] == "test_clock_advancing"
    deleting = await api.delete(f"/v1/test_clocks/{clock['id']}")
    assert (deleting.status_code, deleting.json()["error"]["code"]) == (
        409,
        "test_clock_advancing",
    )
    async with billing_worker(deps, schedule):
        ready = await until_ready(api, clock["id"])
    assert ready["frozen_time"] == target
    assert schedule.moments(clock["id"]) == [T0 + DAY, T0 + 2 * DAY]
    assert (await event_types(pool, clock["id"])).count("test_clock.ready") == 1


async def test_steps_run_once_per_due_moment_in_order_on_the_moments_clock(
    api: Api, deps: Deps
) -> None:
    clock = await create_clock(api)
    customer = (await api.post("/v1/customers", {"test_clock": clock["id"]})).json()
    months = [datetime(2030, m, 28, 9, 0, tzinfo=UTC) for m in (2, 3, 4, 5)]
    renewals = Schedule(name="test.renewals", due={clock["id"]: months}, customer=customer["id"])
    # Another clock's work is not this clock's business.
    elsewhere = await create_clock(api)
    renewals.due[elsewhere["id"]] = [T0 + DAY]
    started = await advance(api, clock["id"], months[2])
    assert started.status_code == 200, started.text
    async with billing_worker(deps, renewals):
        ready = await until_ready(api, clock["id"])
    assert ready["frozen_time"] == unix(months[2])
    # Every due moment up to the target, in order, once; the one after it waits.
    assert renewals.moments(clock["id"]) == months[:3]
    assert [now for c, _, now in renewals.calls if c == clock["id"]] == months[:3]
    assert renewals.customer_times == months[:3]
    assert renewals.moments(elsewhere["id"]) == []
    assert renewals.due[clock["id"]] == months[3:]
    later = await advance(api, clock["id"], months[3] + DAY)
    assert later.status_code == 200
    async with billing_worker(deps, renewals):
        await until_ready(api, clock["id"])
    assert renewals.moments(clock["id"]) == months


@dataclass
class Finalizer:
    """A second fake step, after ``renewals``: each renewal it sees makes work for itself
    at the same moment (an invoice finalized at once), which must run at that moment."""

    renewals: Schedule
    name: str = "test.finalize"
    finalized: list[datetime] = field(default_factory=list)
    pending: list[datetime] = field(default_factory=list)

    async def next_due(self, deps: Deps, clock_id: str) -> datetime | None:
        seen = {m for c, m, _ in self.renewals.calls if c == clock_id}
        self.pending = sorted(seen - set(self.finalized))
        return self.pending[0] if self.pending else None

    async def run_until(self, deps: Deps, clock_id: str, moment: datetime) -> None:
        self.finalized += [m for m in self.pending if m <= moment and m not in self.finalized]


async def test_work_one_step_creates_runs_at_the_same_moment(api: Api, deps: Deps) -> None:
    clock = await create_clock(api)
    renewals = Schedule(due={clock["id"]: [T0 + DAY, T0 + 8 * DAY]})
    finalizer = Finalizer(renewals)
    await advance(api, clock["id"], T0 + 10 * DAY)
    async with billing_worker(deps, finalizer, renewals):
        await until_ready(api, clock["id"])
    assert finalizer.finalized == [T0 + DAY, T0 + 8 * DAY]


async def test_an_advance_that_crashes_resumes_where_it_was(api: Api, deps: Deps) -> None:
    clock = await create_clock(api)
    due = [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    schedule = Schedule(due={clock["id"]: due}, crash_at=due[1])
    await advance(api, clock["id"], T0 + 5 * DAY)
    async with billing_worker(deps, schedule):
        ready = await until_ready(api, clock["id"])  # the retry comes a second later
    assert ready["frozen_time"] == unix(T0 + 5 * DAY)
    # The first run got to the second moment; the retry resumed there, not from the start.
    assert schedule.moments(clock["id"]) == [due[0], due[1], due[1], due[2]]


async def test_an_advance_failing_every_attempt_leaves_internal_failure(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    clock = await create_clock(api)
    broken = Schedule(due={clock["id"]: [T0 + DAY]}, failures=100)
    await advance(api, clock["id"], T0 + 2 * DAY)
    timer = FakeClock()  # after the job was enqueued (due at the database's now)
    async with billing_worker(replace(deps, clock=timer), broken):
        for delay in clock_advance.ADVANCE_RETRY.delays:
            attempts = len(broken.calls)
            await eventually(functools.partial(_more, broken.calls, attempts))
            await _job_waiting(pool, clock["id"])
            timer.advance(delay + 1)
        failed = await until_ready(api, clock["id"], "internal_failure")
    assert len(broken.calls) == clock_advance.ADVANCE_RETRY.max_attempts
    assert failed["frozen_time"] == unix(T0 + DAY)  # as far as it got
    assert (await event_types(pool, clock["id"]))[-1] == "test_clock.internal_failure"
    again = await advance(api, clock["id"], T0 + 3 * DAY)
    assert (again.status_code, again.json()["error"]["code"]) == (
        409,
        "test_clock_internal_failure",
    )
    assert (await api.delete(f"/v1/test_clocks/{clock['id']}")).status_code == 200


async def _more(calls: Sequence[object], than: int) -> bool:
    return len(calls) > than


async def _job_waiting(pool: asyncpg.Pool, clock_id: str) -> None:
    async def failed() -> bool:
        status = await pool.fetchval(
            "SELECT status FROM jobs WHERE payload->>'test_clock' = $1", clock_id
        )
        return status in ("failed", "dead")

    await eventually(failed)


async def test_a_clock_whose_job_died_is_not_left_advancing(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    clock = await create_clock(api)
    await advance(api, clock["id"], T0 + DAY)
    # The last attempt's worker was killed: the runner buries the job without a handler.
    await pool.execute(
        "UPDATE jobs SET status = 'dead' WHERE payload->>'test_clock' = $1", clock["id"]
    )
    await clock_advance.recover({}, JobContext(deps, "job_recover", 1, "wkr_test"))
    failed = (await api.get(f"/v1/test_clocks/{clock['id']}")).json()
    assert (failed["status"], failed["frozen_time"]) == ("internal_failure", unix(T0))


async def test_deleting_a_clock_deletes_its_customers(api: Api, pool: asyncpg.Pool) -> None:
    clock = await create_clock(api)
    on_clock = [
        (await api.post("/v1/customers", {"test_clock": clock["id"], "name": n})).json()
        for n in ("Ada", "Grace")
    ]
    elsewhere = (await api.post("/v1/customers", {"name": "Edsger"})).json()
    assert [c["test_clock"] for c in on_clock] == [clock["id"]] * 2
    method = await saved_card(api, on_clock[0]["id"])
    kept = await saved_card(api, elsewhere["id"])
    assert elsewhere["test_clock"] is None
    deleted = await api.delete(f"/v1/test_clocks/{clock['id']}")
    assert deleted.json() == {"id": clock["id"], "object": "test_clock", "deleted": True}
    assert (await api.get(f"/v1/test_clocks/{clock['id']}")).status_code == 404
    for customer in on_clock:
        assert (await api.get(f"/v1/customers/{customer['id']}")).json()["deleted"] is True
        assert (await event_types(pool, customer["id"]))[-1] == "customer.deleted"
    assert "deleted" not in (await api.get(f"/v1/customers/{elsewhere['id']}")).json()
    # Their objects go with them: the saved card is detached and can no longer pay.
    assert (await api.get(f"/v1/payment_methods/{method}")).json()["customer"] is None
    assert (await event_types(pool, method))[-1] == "payment_method.detached"
    assert (await api.get(f"/v1/payment_methods/{kept}")).json()["customer"] == elsewhere["id"]
    assert (await event_types(pool, clock["id"]))[-1] == "test_clock.deleted"
    joined = await api.post("/v1/customers", {"test_clock": clock["id"]})
    assert joined.json()["error"]["code"] == "resource_missing"


async def test_a_customer_on_a_clock_runs_on_its_time(api: Api, deps: Deps) -> None:
    clock = await create_clock(api)
    customer = (await api.post("/v1/customers", {"test_clock": clock["id"]})).json()
    plain = (await api.post("/v1/customers", {})).json()
    assert (await api.get(f"/v1/customers/{customer['id']}")).json()["test_clock"] == clock["id"]
    assert (await clock_for_customer(deps, customer["id"])).now() == T0
    assert (await clock_for_test_clock(deps, clock["id"])).now() == T0
    assert (await deps_for_customer(deps, customer["id"])).clock.now() == T0
    assert await clock_for_customer(deps, plain["id"]) is deps.clock
    assert await clock_for_customer(deps, None) is deps.clock
    assert await deps_for_customer(deps, plain["id"]) is deps
    await advance(api, clock["id"], T0 + 3 * DAY)
    # While the clock advances, no customer joins it.
    joining = await api.post("/v1/customers", {"test_clock": clock["id"]})
    assert (joining.status_code, joining.json()["error"]["code"]) == (409, "test_clock_advancing")
    async with billing_worker(deps):
        await until_ready(api, clock["id"])
    assert (await clock_for_customer(deps, customer["id"])).now() == T0 + 3 * DAY


@pytest.mark.parametrize("body", [{}, {"frozen_time": "2030"}, {"frozen_time": 10}])
async def test_a_clock_needs_a_frozen_time_in_range(api: Api, body: dict[str, Any]) -> None:
    answer = await api.post("/v1/test_clocks", body)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "frozen_time"


async def test_a_worker_killed_mid_advance_is_taken_over_where_it_stopped(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    clock = await create_clock(api)
    due = [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    schedule = Schedule(due={clock["id"]: list(due)}, crash_at=due[1])
    await advance(api, clock["id"], T0 + 4 * DAY)
    timer = FakeClock()
    # A worker claims the job with a 30 s lease, runs the first moment, and dies in the
    # second without a word: the job stays leased to it.
    claimed = await jobs_db.claim(pool, "wkr_dead", [clock_advance.QUEUE], 100, 30, timer.now())
    [job] = [j.id for j in claimed if j.payload.get("test_clock") == clock["id"]]
    await jobs_db.release(pool, "wkr_dead", [j.id for j in claimed if j.id != job], timer.now())
    with pytest.raises(RuntimeError, match="crashed"):
        await clock_advance.walk(deps, clock["id"], [schedule])
    stuck = (await api.get(f"/v1/test_clocks/{clock['id']}")).json()
    assert (stuck["status"], stuck["frozen_time"]) == ("advancing", unix(due[1]))
    async with billing_worker(replace(deps, clock=timer), schedule):
        timer.advance(31)  # the dead worker's lease runs out
        ready = await until_ready(api, clock["id"])
    assert ready["frozen_time"] == unix(T0 + 4 * DAY)
    assert schedule.moments(clock["id"]) == [due[0], due[1], due[1], due[2]]
    row = await pool.fetchrow("SELECT status, attempts FROM jobs WHERE id = $1", job)
    assert row is not None and (row["status"], row["attempts"]) == ("succeeded", 2)


async def test_a_stale_advance_job_does_not_walk_the_next_advance(api: Api, deps: Deps) -> None:
    clock = await create_clock(api)
    schedule = Schedule(due={clock["id"]: [T0 + DAY]})
    await advance(api, clock["id"], T0 + 2 * DAY)
    # The job of an earlier advance (to another target), re-run late, changes nothing.
    await clock_advance.walk(deps, clock["id"], [schedule], target=unix(T0 + 5 * DAY))
    assert schedule.calls == []
    assert (await api.get(f"/v1/test_clocks/{clock['id']}")).json()["status"] == "advancing"
    await clock_advance.walk(deps, clock["id"], [schedule], target=unix(T0 + 2 * DAY))
    assert schedule.moments(clock["id"]) == [T0 + DAY]
    assert (await api.get(f"/v1/test_clocks/{clock['id']}")).json()["status"] == "ready"
