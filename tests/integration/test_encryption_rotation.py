"""``paygrid keys rotate-encryption``: every stored secret moves to the ring's first key,
old keys stay readable until then, and the API works afterwards with the new key alone.

The command re-encrypts every row in the database, so it runs against a database of its
own rather than the session's shared one (whose secrets are under the test key ring)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.crypto import KEY_BYTES, DecryptionFailed, KeyRing
from paygrid.db import engine
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.dependencies import Deps
from paygrid.services.merchants import create_merchant
from tests.conftest import (
    LOCAL_WEBHOOK_HOSTS,
    TEST_BASE_URL,
    Api,
    confirmed_payment,
    scratch_database,
)


def _new_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


KEY_A, KEY_B, KEY_C = _new_key(), _new_key(), _new_key()
STRIPE_SECRET = "sk_test_rotation_stripe_4321"
STRIPE_HOOK = "whsec_rotation_hook_8765"
PAYSTACK_SECRET = "sk_test_rotation_paystack_1357"


@pytest.fixture(scope="module")
def rotation_database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_rotation") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture
async def rotation_pool(rotation_database: str) -> AsyncIterator[asyncpg.Pool]:
    created = await engine.create_pool(rotation_database, 10)
    yield created
    await created.close()


def _deps(pool: asyncpg.Pool, encryption_key: str) -> Deps:
    settings = Settings(
        public_url=TEST_BASE_URL,
        log_level="INFO",
        encryption_key=encryption_key,
        webhook_allowed_hosts=LOCAL_WEBHOOK_HOSTS,
    )
    return build_deps(pool, settings)


@asynccontextmanager
async def _client(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(deps.settings, deps=deps))
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        yield http


def _rotate(database_url: str, ring: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paygrid.cli", "keys", "rotate-encryption"],
        env={
            **os.environ,
            "PAYGRID_DATABASE_URL": database_url,
            "PAYGRID_ENCRYPTION_KEY": ring,
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _counts(output: str, label: str) -> tuple[int, int]:
    found = re.search(rf"{label}\W+(\d+)\W+(\d+)", output)
    assert found is not None, output
    return int(found[1]), int(found[2])


async def _ciphertexts(pool: asyncpg.Pool) -> dict[str, bytes]:
    """Every stored ciphertext, by a name saying where it is."""
    sealed = {
        f"account {row['id']}": bytes(row["credentials"])
        for row in await pool.fetch("SELECT id, credentials FROM connector_accounts")
    }
    for row in await pool.fetch("SELECT * FROM webhook_endpoints"):
        sealed[f"endpoint {row['id']}"] = bytes(row["secret_ciphertext"])
        if row["previous_secret_ciphertext"] is not None:
            sealed[f"previous {row['id']}"] = bytes(row["previous_secret_ciphertext"])
    for row in await pool.fetch(
        "SELECT merchant_id, livemode, key, response_body_sealed FROM idempotency_keys"
        " WHERE response_body_sealed IS NOT NULL"
    ):
        context = f"idempotency_keys:{row['merchant_id']}:{row['livemode']}:{row['key']}"
        sealed[f"replay {context}"] = bytes(row["response_body_sealed"])
    return sealed


def _context(name: str) -> str:
    return name.split(" ", 1)[1]


async def _setup_under_key_a(pool: asyncpg.Pool) -> tuple[Api, dict[str, Any]]:
    """A merchant with a Stripe, a Paystack and a simulator account and a webhook endpoint
    whose secret was rotated once (so it has a previous secret too), all under key A."""
    merchant = await create_merchant(pool, "Rotation shop")
    made: dict[str, Any] = {"merchant": merchant}
    async with _client(_deps(pool, KEY_A)) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        bodies: dict[str, dict[str, Any]] = {
            "stripe": {
                "provider": "stripe",
                "credentials": {"secret_key": STRIPE_SECRET, "webhook_secret": STRIPE_HOOK},
                "currencies": ["EUR"],
            },
            "paystack": {
                "provider": "paystack",
                "credentials": {"secret_key": PAYSTACK_SECRET},
                "currencies": ["NGN"],
            },
            "simulator": {"provider": "simulator", "currencies": ["USD"]},
        }
        for name, body in bodies.items():
            response = await api.post("/v1/connector_accounts", body)
            assert response.status_code == 200, response.text
            made[name] = response.json()["id"]
        # Sent with an idempotency key: its stored response carries the secret, sealed.
        endpoint = await api.post(
            "/v1/webhook_endpoints",
            {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]},
            **{"Idempotency-Key": "rotation-endpoint"},
        )
        assert endpoint.status_code == 200, endpoint.text
        rotated = await api.post(f"/v1/webhook_endpoints/{endpoint.json()['id']}/rotate_secret")
        assert rotated.status_code == 200, rotated.text
        made["endpoint"] = endpoint.json()["id"]
        made["old_secret"] = endpoint.json()["secret"]
        made["new_secret"] = rotated.json()["secret"]
    return api, made


async def test_rotate_encryption_moves_every_secret_to_the_first_key(
    rotation_pool: asyncpg.Pool, rotation_database: str
) -> None:
    _, made = await _setup_under_key_a(rotation_pool)
    ring_a = KeyRing.from_setting(KEY_A)
    before = await _ciphertexts(rotation_pool)
    assert len(before) == 6
    assert all(ring_a.is_current(sealed) for sealed in before.values())
    plain = {
        name: ring_a.decrypt(sealed, context=_context(name)) for name, sealed in before.items()
    }

    # A ring without key A cannot read the secrets: the command refuses and changes nothing.
    refused = _rotate(rotation_database, KEY_C)
    assert refused.returncode == 1
    assert "error:" in refused.stderr and "PAYGRID_ENCRYPTION_KEY" in refused.stderr
    assert await _ciphertexts(rotation_pool) == before

    rotated = _rotate(rotation_database, f"{KEY_B},{KEY_A}")
    assert rotated.returncode == 0, rotated.stderr
    assert _counts(rotated.stdout, "connector accounts") == (3, 0)
    assert _counts(rotated.stdout, "webhook endpoints") == (1, 0)
    assert _counts(rotated.stdout, "idempotent responses") == (1, 0)
    assert KEY_A not in rotated.stdout + rotated.stderr
    for secret in (STRIPE_SECRET, STRIPE_HOOK, PAYSTACK_SECRET, made["new_secret"]):
        assert secret not in rotated.stdout + rotated.stderr

    after = await _ciphertexts(rotation_pool)
    assert after.keys() == before.keys()
    ring_b = KeyRing.from_setting(KEY_B)
    for name, sealed in after.items():
        assert sealed != before[name]
        assert ring_b.is_current(sealed) and not ring_a.is_current(sealed)
        assert ring_b.decrypt(sealed, context=_context(name)) == plain[name]
        with pytest.raises(DecryptionFailed):
            ring_a.decrypt(sealed, context=_context(name))
    stripe = json.loads(ring_b.decrypt(after[f"account {made['stripe']}"], context=made["stripe"]))
    assert stripe == {"secret_key": STRIPE_SECRET, "webhook_secret": STRIPE_HOOK}
    endpoint = made["endpoint"]
    assert ring_b.decrypt(after[f"endpoint {endpoint}"], context=endpoint) == made["new_secret"]
    assert ring_b.decrypt(after[f"previous {endpoint}"], context=endpoint) == made["old_secret"]

    again = _rotate(rotation_database, f"{KEY_B},{KEY_A}")
    assert again.returncode == 0, again.stderr
    assert _counts(again.stdout, "connector accounts") == (0, 3)
    assert _counts(again.stdout, "webhook endpoints") == (0, 1)
    assert _counts(again.stdout, "idempotent responses") == (0, 1)
    assert await _ciphertexts(rotation_pool) == after


async def test_api_works_with_the_new_key_alone_after_rotation(
    rotation_pool: asyncpg.Pool, rotation_database: str
) -> None:
    _, made = await _setup_under_key_a(rotation_pool)
    rotated = _rotate(rotation_database, f"{KEY_B},{KEY_A}")
    assert rotated.returncode == 0, rotated.stderr

    deps = _deps(rotation_pool, KEY_B)
    try:
        async with _client(deps) as http:
            api = Api(http, made["merchant"].key("secret", livemode=False))
            account = await api.get(f"/v1/connector_accounts/{made['stripe']}")
            assert account.status_code == 200, account.text
            assert account.json()["credentials"] == {
                "secret_key": "…4321",
                "webhook_secret": "…8765",
            }
            row = await rotation_pool.fetchrow(
                "SELECT * FROM connector_accounts WHERE id = $1", made["stripe"]
            )
            assert row is not None
            config = deps.connectors.config_of(ConnectorAccountRow.from_record(row))
            assert (config.secret_key, config.webhook_secret) == (STRIPE_SECRET, STRIPE_HOOK)

            # The simulator account's credentials are decrypted to build its connector.
            payment = await api.post("/v1/payments", confirmed_payment(currency="USD"))
            assert payment.status_code == 200, payment.text
            assert payment.json()["status"] == "succeeded"
            assert payment.json()["connector_account"] == made["simulator"]

            # The stored (sealed) response of the endpoint's creation replays under key B.
            replayed = await api.post(
                "/v1/webhook_endpoints",
                {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]},
                **{"Idempotency-Key": "rotation-endpoint"},
            )
            assert replayed.status_code == 200, replayed.text
            assert replayed.headers["idempotent-replayed"] == "true"
            assert replayed.json()["secret"] == made["old_secret"]

            # Rotating the webhook secret reads the current one back under key B.
            endpoint = await api.post(f"/v1/webhook_endpoints/{made['endpoint']}/rotate_secret")
            assert endpoint.status_code == 200, endpoint.text

            updated = await api.post(
                f"/v1/connector_accounts/{made['paystack']}",
                {"credentials": {"secret_key": "sk_test_after_rotation_2468"}},
            )
            assert updated.status_code == 200, updated.text
            assert updated.json()["credentials"]["secret_key"] == "…2468"
    finally:
        await deps.connectors.aclose()


async def test_a_replay_sealed_under_a_dropped_key_is_a_clear_4xx(
    rotation_pool: asyncpg.Pool,
) -> None:
    """Key A dropped from the ring without running the rotation: the stored response cannot
    be read, and the retry is told so (never a 500, never run twice)."""
    _, made = await _setup_under_key_a(rotation_pool)
    deps = _deps(rotation_pool, KEY_C)
    try:
        async with _client(deps) as http:
            api = Api(http, made["merchant"].key("secret", livemode=False))
            replayed = await api.post(
                "/v1/webhook_endpoints",
                {"url": "http://127.0.0.1:9/hooks", "enabled_events": ["*"]},
                **{"Idempotency-Key": "rotation-endpoint"},
            )
            assert replayed.status_code == 422, replayed.text
            error = replayed.json()["error"]
            assert error["code"] == "idempotency_response_unreadable"
            assert error["param"] == "Idempotency-Key"
            listed = await api.get("/v1/webhook_endpoints")
            assert [e["id"] for e in listed.json()["data"]] == [made["endpoint"]]
    finally:
        await deps.connectors.aclose()
