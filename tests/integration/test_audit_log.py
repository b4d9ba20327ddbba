"""The audit log: every change is recorded by the database in the changing transaction with
who made it, from which request and address; entries are append-only and hash-chained per
merchant; `paygrid audit verify` names the first broken link."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.db import engine
from paygrid.db import jobs as jobs_db
from paygrid.dependencies import Deps
from paygrid.domain import scopes
from paygrid.services import audit
from paygrid.services.merchants import NewMerchant, create_merchant, issue_key
from paygrid.worker.registry import JobContext, JobRegistry
from tests.conftest import Api, confirmed_payment, scratch_database
from tests.integration.worker_harness import running, settled


async def _entries(api: Api, **filters: Any) -> list[dict[str, Any]]:
    response = await api.get("/v1/audit_log", limit=100, **filters)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


@pytest.fixture
async def admin(client: httpx.AsyncClient, merchant: NewMerchant, pool: asyncpg.Pool) -> Api:
    key = await issue_key(pool, merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"]))
    return Api(client, key.secret)


async def test_api_changes_are_recorded_with_actor_request_and_values(
    api: Api, admin: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    created = await api.post(
        "/v1/payments",
        confirmed_payment(amount=4200, capture_method="manual"),
        **{"X-Request-Id": "req_audit_test_1"},
    )
    payment = created.json()
    captured = await api.post(f"/v1/payments/{payment['id']}/capture", {"amount_to_capture": 4000})
    assert captured.json()["status"] == "succeeded"

    entries = await _entries(admin, object=payment["id"])
    actions = [e["action"] for e in reversed(entries)]
    assert actions[0] == "payment.created"
    assert "payment.updated" in actions
    key_id = next(k.id for k in merchant.keys if k.kind == "secret" and not k.livemode)
    assert {e["actor"] for e in entries} == {f"api_key:{key_id}"}
    first = entries[-1]
    assert first["request_id"] == "req_audit_test_1"
    assert first["ip"] == "127.0.0.1"
    assert first["before"] is None and first["after"]["amount"] == 4200
    last = entries[0]
    assert (last["before"]["status"], last["after"]["status"]) == ("requires_capture", "succeeded")
    assert last["after"]["amount_received"] == 4000

    # Filters: by actor and by action.
    by_action = await _entries(admin, action="payment.created", object=payment["id"])
    assert [e["id"] for e in by_action] == [first["id"]]
    assert await _entries(admin, actor="cli:nobody") == []


async def test_secrets_never_reach_the_log(admin: Api, api: Api) -> None:
    secret = "sk_test_audit_secret_value_0001"
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "stripe",
            "credentials": {"secret_key": secret},
            "api_base": "http://127.0.0.1:9",
        },
    )
    made = await admin.post("/v1/api_keys", {"role": "viewer"})
    entries = await _entries(admin)
    text = str(entries)
    assert secret not in text
    assert made.json()["secret"] not in text
    created = [e for e in entries if e["object_id"] == account.json()["id"]]
    assert created and "credentials" not in created[0]["after"]
    key_entries = [e for e in entries if e["object_id"] == made.json()["id"]]
    assert key_entries and "key_hash" not in key_entries[0]["after"]


async def test_the_log_needs_the_admin_scope(api: Api) -> None:
    response = await api.get("/v1/audit_log")
    assert response.status_code == 403
    assert response.json()["error"]["missing_scope"] == "admin:read"


async def test_entries_are_append_only(admin: Api, api: Api, pool: asyncpg.Pool) -> None:
    await api.post("/v1/customers", {"name": "Ada"})
    [entry, *_] = await _entries(admin)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE audit_log SET actor = 'someone else' WHERE id = $1", entry["id"])
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM audit_log WHERE id = $1", entry["id"])


async def test_entries_show_whether_they_are_sealed_and_by_which_hash(
    admin: Api, api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    customer = (await api.post("/v1/customers", {"name": "Sealed"})).json()
    [fresh] = await _entries(admin, object=customer["id"])
    assert (fresh["sealed"], fresh["hash"]) == (False, None)
    await audit.seal(pool)
    [sealed] = await _entries(admin, object=customer["id"])
    seal_hash = await pool.fetchval(
        "SELECT hash FROM audit_seals WHERE merchant_id = $1 AND last_id >= $2"
        " ORDER BY last_id LIMIT 1",
        merchant.id,
        sealed["id"],
    )
    assert (sealed["sealed"], sealed["hash"]) == (True, bytes(seal_hash).hex())


# -- the hash chain, on a database of its own (tampering must not touch the shared one) ----


@pytest.fixture(scope="module")
def chain_database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_audit") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture
async def chain_pool(chain_database: str) -> AsyncIterator[asyncpg.Pool]:
    created = await engine.create_pool(chain_database, 4)
    yield created
    await created.close()


def _verify_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paygrid.cli", "audit", "verify", *args],
        env={**os.environ, "PAYGRID_DATABASE_URL": database_url, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_the_chain_verifies_and_names_the_first_broken_link(
    chain_database: str, chain_pool: asyncpg.Pool
) -> None:
    shop = await create_merchant(chain_pool, "Chained")
    for name in ("Ada", "Grace", "Edsger"):
        await chain_pool.execute(
            "INSERT INTO customers (id, merchant_id, livemode, name) VALUES ($1, $2, false, $3)",
            f"cus_{name.lower()}_{shop.id[-6:]}",
            shop.id,
            name,
        )
    assert await audit.seal(chain_pool) >= 8  # the merchant, its 4 keys, 3 customers
    [report] = await audit.verify(chain_pool, shop.id)
    assert report.broken is None and report.unsealed == 0 and report.sealed >= 8
    ok = _verify_cli(chain_database, "--merchant", shop.id)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok" in ok.stdout

    # An entry written after sealing waits for the next seal; it is counted, not judged.
    await chain_pool.execute(
        "UPDATE customers SET name = 'Ada L.' WHERE merchant_id = $1 AND name = 'Ada'", shop.id
    )
    [pending] = await audit.verify(chain_pool, shop.id)
    assert pending.unsealed == 1 and pending.broken is None
    await audit.seal(chain_pool)

    chain = await chain_pool.fetch(  # sealed in batches, in id order: seq = chain position
        "SELECT id, row_number() OVER (ORDER BY id) AS seq FROM audit_log"
        " WHERE merchant_id = $1 ORDER BY id",
        shop.id,
    )
    victim = chain[4]
    async with chain_pool.acquire() as conn, conn.transaction():
        # Bypass the append-only guard, as someone with superuser access could.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "UPDATE audit_log SET after = jsonb_set(after, '{name}', '\"Mallory\"') WHERE id = $1",
            victim["id"],
        )
    [tampered] = await audit.verify(chain_pool, shop.id)
    assert tampered.broken is not None
    assert (tampered.broken.entry_id, tampered.broken.seq) == (victim["id"], victim["seq"])
    failed = _verify_cli(chain_database, "--merchant", shop.id)
    assert failed.returncode == 1
    assert victim["id"] in failed.stdout

    # Dropping an entry breaks the link after it.
    async with chain_pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("DELETE FROM audit_log WHERE id = $1", chain[2]["id"])
    [dropped] = await audit.verify(chain_pool, shop.id)
    assert dropped.broken is not None and dropped.broken.entry_id == chain[3]["id"]


async def test_cli_changes_are_recorded_as_the_cli(
    chain_database: str, chain_pool: asyncpg.Pool
) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "paygrid.cli", "merchants", "create", "--name", "By CLI", "--json"],
        env={**os.environ, "PAYGRID_DATABASE_URL": chain_database},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    import json

    merchant_id = json.loads(made.stdout)["id"]
    actors = {
        r["actor"]
        for r in await chain_pool.fetch(
            "SELECT actor FROM audit_log WHERE merchant_id = $1", merchant_id
        )
    }
    assert len(actors) == 1 and next(iter(actors)).startswith("cli:")


async def test_changes_made_by_a_job_are_recorded_as_the_job(
    api: Api, admin: Api, deps: Deps, pool: asyncpg.Pool
) -> None:
    customer = (await api.post("/v1/customers", {"name": "Before"})).json()
    registry = JobRegistry()

    async def rename(payload: dict[str, Any], context: JobContext) -> None:
        await context.deps.pool.execute(
            "UPDATE customers SET name = 'After' WHERE id = $1", payload["customer"]
        )

    registry.register("test.rename_customer", rename)
    queue = f"test_{uuid.uuid4().hex[:12]}"
    job = await jobs_db.enqueue(
        pool, "test.rename_customer", {"customer": customer["id"]}, queue=queue
    )
    assert job is not None
    async with running(deps, registry, queue):
        done = await settled(pool, job, deadline=15)
    assert done["status"] == "succeeded"
    [renamed] = await _entries(admin, object=customer["id"], action="customer.updated")
    assert renamed["actor"] == "job:test.rename_customer"
    assert (renamed["before"]["name"], renamed["after"]["name"]) == ("Before", "After")
    assert renamed["request_id"] is None


async def test_another_merchant_never_sees_the_entries(
    api: Api, client: httpx.AsyncClient, other_merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    mine = (await api.post("/v1/customers", {"name": "Mine"})).json()
    key = await issue_key(
        pool, other_merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"])
    )
    theirs = Api(client, key.secret)
    assert await _entries(theirs, object=mine["id"]) == []
    assert all(e["object_id"] != mine["id"] for e in await _entries(theirs))
