"""The paygrid CLI against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import asyncpg
import httpx
import pytest

from paygrid.db import engine
from paygrid.services.context import Deps
from tests.conftest import auth


def _paygrid(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paygrid.cli", *args],
        env={**os.environ, "PAYGRID_DATABASE_URL": database_url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


async def test_merchants_and_keys_lifecycle(
    database_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = _paygrid(database_url, "merchants", "create", "--name", "CLI Shop", "--json")
    assert created.returncode == 0, created.stderr
    merchant = json.loads(created.stdout)
    assert set(merchant) >= {"id", "secret_key", "publishable_key"}
    assert merchant["secret_key"].startswith("sk_test_") and merchant["publishable_key"].startswith(
        "pk_test_"
    )
    stored = await pool.fetch(
        "SELECT key_hash, lookup_prefix FROM api_keys WHERE merchant_id = $1", merchant["id"]
    )
    assert len(stored) == 4
    assert all(merchant["secret_key"].encode() not in bytes(r["key_hash"]) for r in stored)

    ok = await client.get("/v1/payments", headers=auth(merchant["secret_key"]))
    assert ok.status_code == 200

    listed = _paygrid(database_url, "merchants", "list")
    assert merchant["id"] in listed.stdout

    issued = _paygrid(
        database_url, "keys", "create", "--merchant", merchant["id"], "--mode", "test"
    )
    assert issued.returncode == 0, issued.stderr
    key_id, secret = issued.stdout.strip().split(": ")
    keys = _paygrid(database_url, "keys", "list", "--merchant", merchant["id"])
    assert key_id in keys.stdout and secret not in keys.stdout
    assert (await client.get("/v1/payments", headers=auth(secret))).status_code == 200

    revoked = _paygrid(database_url, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    refused = await client.get("/v1/payments", headers=auth(secret))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_revoked"


@pytest.mark.parametrize(
    "args", [("keys", "revoke", "key_missing"), ("keys", "create", "--merchant", "mer_missing")]
)
def test_cli_reports_missing_objects(database_url: str, args: tuple[str, ...]) -> None:
    result = _paygrid(database_url, *args)
    assert result.returncode == 1
    assert "error:" in result.stdout and "No such" in result.stdout


def test_migrate_is_idempotent(database_url: str) -> None:
    result = _paygrid(database_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert engine.head_revision() in result.stdout


async def test_health_and_request_ids(client: httpx.AsyncClient, deps: Deps) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    echoed = await client.get("/healthz", headers={"X-Request-Id": "trace-abc-123"})
    assert echoed.headers["x-request-id"] == "trace-abc-123"
    generated = await client.get("/v1/payments")
    assert generated.headers["x-request-id"].startswith("req_")
    assert generated.json()["error"]["request_id"] == generated.headers["x-request-id"]
    unsafe = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"].startswith("req_")


async def test_readyz_reports_pending_migrations(client: httpx.AsyncClient) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    app.state.migration_head = "9999"
    try:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "migrations_pending"
    finally:
        app.state.migration_head = engine.head_revision()


async def test_openapi_documents_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/v1/payments",
        "/v1/payments/{payment_id}/capture",
        "/v1/refunds",
        "/v1/customers",
        "/v1/payment_methods",
        "/healthz",
        "/readyz",
    ):
        assert path in paths
    create = paths["/v1/payments"]["post"]
    assert {"200", "400", "401", "402", "409", "422"} <= set(create["responses"])
    assert "payment_invalid_state" in create["responses"]["409"]["description"]
    assert (await client.get("/docs")).status_code == 200
