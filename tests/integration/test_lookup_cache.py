"""Per-process lookup caches (API key principals, routing inputs): a change made anywhere is
honoured by every process as soon as its LISTEN hears the NOTIFY, not after the TTL, and a
change that bypasses ``db/`` (no NOTIFY) only after the TTL.

"Process B" here is a second app on a pool of its own, with its caches listening as
``serve`` does and a TTL far longer than any test, so only the notification can refresh it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.clock import FakeClock
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db.listener import Notifications, Subscription
from paygrid.db.lookup_notices import API_KEYS
from paygrid.dependencies import Deps
from paygrid.domain import scopes
from paygrid.domain.routing import RoutingContext
from paygrid.lookup_cache import Lookups
from paygrid.services import lookup_invalidation
from paygrid.services.context import Tenant
from paygrid.services.merchants import IssuedKey, NewMerchant, hash_key, issue_key
from paygrid.services.routing import BUILTIN, targets_for
from tests.conftest import TEST_BASE_URL, Api

T = TypeVar("T")
LONG_TTL = 3600.0
# How long to wait for a NOTIFY to reach the other listener (milliseconds, but a loaded
# machine is slow); far below LONG_TTL, so only the notification can explain a refusal.
NOTICE_SECONDS = 10.0


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """``probe()`` until ``done`` holds, for at most ``NOTICE_SECONDS``; its last result."""
    deadline = time.monotonic() + NOTICE_SECONDS
    while True:
        result = await probe()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.01)


async def _listen(lookups: Lookups, pool: asyncpg.Pool) -> tuple[Notifications, Subscription]:
    """The caches listening as ``serve``'s do: on a LISTEN hub of the process."""
    notifications = Notifications(pool, owner="test")
    await notifications.start()
    return notifications, await lookup_invalidation.listen(lookups, notifications)


@dataclasses.dataclass
class Process:
    deps: Deps
    http: httpx.AsyncClient


@pytest.fixture
async def process_b(database_url: str, settings: Settings) -> AsyncIterator[Process]:
    pool = await engine.create_pool(database_url, 4)
    deps = dataclasses.replace(build_deps(pool, settings), lookups=Lookups(ttl=LONG_TTL))
    notifications, listener = await _listen(deps.lookups, pool)
    transport = httpx.ASGITransport(app=create_app(settings, deps=deps))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
            yield Process(deps, http)
    finally:
        await listener.stop()
        await notifications.stop()
        await deps.connectors.aclose()
        await pool.close()


async def _admin(pool: asyncpg.Pool, merchant: NewMerchant) -> IssuedKey:
    return await issue_key(pool, merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"]))


async def test_a_key_revoked_in_one_process_is_refused_by_another_that_cached_it(
    client: httpx.AsyncClient, process_b: Process, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    admin = Api(client, (await _admin(pool, merchant)).secret)
    made = (await admin.post("/v1/api_keys", {"name": "cached in B"})).json()
    in_b = Api(process_b.http, made["secret"])
    assert (await in_b.get("/v1/customers")).status_code == 200
    cached = process_b.deps.lookups.cache(API_KEYS)
    assert cached.get(hash_key(made["secret"])) is not None

    revoked = await admin.post(f"/v1/api_keys/{made['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    refused = await eventually(lambda: in_b.get("/v1/customers"), lambda r: r.status_code == 401)

    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "api_key_revoked"
    assert cached.get(hash_key(made["secret"])) is None


async def test_a_rolled_key_is_refused_by_another_process(
    client: httpx.AsyncClient, process_b: Process, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    admin = await _admin(pool, merchant)
    in_b = Api(process_b.http, admin.secret)
    assert (await in_b.get("/v1/api_keys")).status_code == 200
    rolled = await Api(client, admin.secret).post(f"/v1/api_keys/{admin.id}/roll")
    assert rolled.status_code == 200, rolled.text

    old = await eventually(lambda: in_b.get("/v1/api_keys"), lambda r: r.status_code == 401)
    assert old.status_code == 401
    successor = Api(process_b.http, rolled.json()["secret"])
    assert (await successor.get("/v1/api_keys")).status_code == 200


async def test_a_cached_key_still_names_the_actor_in_the_audit_log(
    process_b: Process, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    key = merchant.key("secret", livemode=False)
    key_id = next(k.id for k in merchant.keys if k.secret == key)
    in_b = Api(process_b.http, key)
    assert (await in_b.get("/v1/customers")).status_code == 200  # now cached
    created = await in_b.post("/v1/customers", {"name": "Audited"})
    assert created.status_code == 200, created.text
    actor = await pool.fetchval(
        "SELECT actor FROM audit_log WHERE object_id = $1", created.json()["id"]
    )
    assert actor == f"api_key:{key_id}"


async def test_routing_inputs_are_cached_until_a_write_to_them(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    clock = FakeClock()
    lookups = Lookups(clock, ttl=30.0)
    notifications, listener = await _listen(lookups, pool)
    tenant = Tenant(merchant.id, livemode=False)
    context = RoutingContext(
        payment_id="pay_x", currency="USD", amount=1000, payment_method_type="card"
    )

    async def route() -> list[str | None]:
        targets = await targets_for(pool, tenant, context, lookups=lookups)
        return [target.account_id for target in targets]

    try:
        assert await route() == [BUILTIN.account_id]
        made = await api.post("/v1/connector_accounts", {"provider": "simulator"})
        assert made.status_code == 200, made.text
        account = made.json()["id"]
        assert await eventually(route, lambda ids: ids == [account]) == [account]

        # A change that bypasses db/ sends no NOTIFY: the cached inputs answer until the TTL.
        await pool.execute(
            "UPDATE connector_accounts SET status = 'disabled' WHERE id = $1", account
        )
        assert await route() == [account]
        clock.advance(31)
        assert await route() == [BUILTIN.account_id]

        # Through the API (db/), the change is heard at once.
        await pool.execute(
            "UPDATE connector_accounts SET status = 'enabled' WHERE id = $1", account
        )
        clock.advance(31)
        assert await route() == [account]
        disabled = await api.post(f"/v1/connector_accounts/{account}/disable")
        assert disabled.status_code == 200, disabled.text
        assert await eventually(route, lambda ids: ids != [account]) == [BUILTIN.account_id]
    finally:
        await listener.stop()
        await notifications.stop()


async def test_nothing_is_cached_while_nobody_listens(pool: asyncpg.Pool) -> None:
    lookups = Lookups(ttl=LONG_TTL)
    notifications, listener = await _listen(lookups, pool)
    cache = lookups.cache("topic")
    cache.put("key", "value", cache.generation)
    assert cache.get("key") == "value"
    await listener.stop()
    assert cache.get("key") is None  # a change now would go unheard
    cache.put("key", "value", cache.generation)
    assert cache.get("key") is None
    await notifications.stop()
