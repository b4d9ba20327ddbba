"""Operations racing on one payment: capture against cancel, identical calls at once, and a
deadlock between two transactions. Real concurrent requests on real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
import pytest

from paygrid.connectors.base import OperationResult
from paygrid.connectors.simulator import SimulatorConnector
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.dependencies import Deps
from paygrid.domain.errors import LockTimeout
from tests.conftest import Api
from tests.integration.payment_builders import payment_in

EXPECTED_CHARGE = {"succeeded": "captured", "canceled": "voided"}


async def _charge_status(pool: asyncpg.Pool, payment_id: str) -> str:
    status = await pool.fetchval(
        "SELECT c.status FROM simulator.charges c JOIN payment_attempts a"
        " ON a.provider_reference = c.id WHERE a.payment_id = $1 AND a.operation = 'authorize'",
        payment_id,
    )
    return str(status)


async def _open_attempts(pool: asyncpg.Pool, payment_id: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM payment_attempts WHERE payment_id = $1"
            " AND status IN ('pending', 'unknown')",
            payment_id,
        )
    )


async def test_capture_racing_cancel_200_times_answers_only_200_or_409(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    codes: Counter[int] = Counter()
    finals: Counter[str] = Counter()
    for _ in range(200):
        payment = await payment_in(api, deps, "requires_capture")
        capture, cancel = await asyncio.gather(
            api.post(f"/v1/payments/{payment['id']}/capture"),
            api.post(f"/v1/payments/{payment['id']}/cancel"),
        )
        codes.update([capture.status_code, cancel.status_code])
        assert {capture.status_code, cancel.status_code} <= {200, 409}, (
            capture.text,
            cancel.text,
        )
        final = (await api.get(f"/v1/payments/{payment['id']}")).json()
        finals[final["status"]] += 1
        # paygrid agrees with the provider, and no attempt is left open
        assert final["status"] in EXPECTED_CHARGE, final
        assert await _charge_status(pool, payment["id"]) == EXPECTED_CHARGE[final["status"]]
        assert await _open_attempts(pool, payment["id"]) == 0
    assert codes[200] >= 200, codes  # every race has a winner


@pytest.mark.parametrize("operation", ["capture", "cancel"])
async def test_identical_concurrent_operations_get_the_same_answer_or_409(
    api: Api, deps: Deps, pool: asyncpg.Pool, operation: str
) -> None:
    deps.connectors.simulator.latency_ms = 5  # overlap the provider calls
    for _ in range(10):
        payment = await payment_in(api, deps, "requires_capture")
        responses = await asyncio.gather(
            *[api.post(f"/v1/payments/{payment['id']}/{operation}") for _ in range(6)]
        )
        assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
        final = (await api.get(f"/v1/payments/{payment['id']}")).json()
        assert final["status"] == {"capture": "succeeded", "cancel": "canceled"}[operation]
        assert all(r.json()["status"] == final["status"] for r in responses if r.status_code == 200)
        assert await _open_attempts(pool, payment["id"]) == 0


async def _operation(
    simulator: SimulatorConnector, kind: str, reference: str, key: str
) -> OperationResult:
    if kind == "capture":
        return await simulator.capture(reference, 5000, key)
    if kind == "void":
        return await simulator.void(reference, key)
    return await simulator.refund(reference, 1000, key)


async def test_simulator_runs_an_operation_once_per_key_under_concurrency(
    api: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    """The same key sent 10 times at once: one capture, the same answer for all."""
    simulator = deps.connectors.simulator
    for kind in ("capture", "void", "refund"):
        status = "succeeded" if kind == "refund" else "requires_capture"
        payment = await payment_in(api, deps, status)
        reference = next(
            a["provider_reference"] for a in payment["attempts"] if a["operation"] == "authorize"
        )
        key = f"same-{kind}-{payment['id']}"
        results = await asyncio.gather(
            *[_operation(simulator, kind, reference, key) for _ in range(10)]
        )
        assert len(set(results)) == 1, results
        assert results[0].succeeded
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM simulator.operations WHERE idempotency_key = $1", key
            )
            == 1
        )
    assert (
        await pool.fetchval(
            "SELECT amount_refunded FROM simulator.charges WHERE id = $1", reference
        )
        == 1000
    )


async def test_a_deadlock_is_retried_inside_the_transaction_helper(pool: asyncpg.Pool) -> None:
    """Two transactions lock two rows in opposite orders: Postgres kills one (40P01); the
    helper runs it again and both finish."""
    await pool.execute("CREATE TABLE race_rows (id int PRIMARY KEY, n int)")
    await pool.execute("INSERT INTO race_rows VALUES (1, 0), (2, 0)")
    both_hold_one = asyncio.Barrier(2)
    runs: Counter[str] = Counter()

    def worker(first: int, second: int, name: str) -> transactions.Work[int]:
        async def work(conn: Connection) -> int:
            runs[name] += 1
            await conn.execute("UPDATE race_rows SET n = n + 1 WHERE id = $1", first)
            if runs[name] == 1:
                await both_hold_one.wait()
            await conn.execute("UPDATE race_rows SET n = n + 1 WHERE id = $1", second)
            return runs[name]

        return work

    try:
        done = await asyncio.gather(
            transactions.run(pool, worker(1, 2, "a")), transactions.run(pool, worker(2, 1, "b"))
        )
        assert sorted(done) == [1, 2]  # one ran twice
        assert [r["n"] for r in await pool.fetch("SELECT n FROM race_rows ORDER BY id")] == [2, 2]
    finally:
        await pool.execute("DROP TABLE race_rows")


async def test_a_transaction_aborted_on_every_run_answers_lock_timeout(pool: asyncpg.Pool) -> None:
    """Bounded: after the last run the abort is a 409 ``lock_timeout``, not a 500."""
    runs = 0

    async def always_a_victim(conn: Connection) -> None:
        nonlocal runs
        runs += 1
        await conn.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '40001'; END $$"
        )

    with pytest.raises(LockTimeout) as raised:
        await transactions.run(pool, always_a_victim)
    assert runs == transactions.RUNS
    assert (raised.value.status_code, raised.value.code) == (409, "lock_timeout")
