"""The paygrid CLI against the test database."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from paygrid.clock import SYSTEM_CLOCK
from paygrid.db import dashboard as dashboard_db
from paygrid.db import engine
from paygrid.dependencies import Deps
from paygrid.services import dashboard_users
from paygrid.services.merchants import NewMerchant
from tests.conftest import auth, scratch_database
from tests.integration.test_worker_process import _free_port


def _paygrid(database_url: str, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paygrid.cli", *args],
        env={**os.environ, "PAYGRID_DATABASE_URL": database_url, "COLUMNS": str(columns)},
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
    "args",
    [
        ("keys", "revoke", "key_missing"),
        ("keys", "create", "--merchant", "mer_missing"),
        ("keys", "list", "--merchant", "mer_missing"),
        ("users", "list", "--merchant", "mer_missing"),
        ("users", "create", "--merchant", "mer_missing", "--email", "a@b.example",
         "--role", "viewer", "--password", "long-enough-password"),
        ("users", "set-password", "nobody@example.com", "--password", "long-enough-password"),
        ("audit", "verify", "--merchant", "mer_missing"),
        ("customers", "erase", "cus_missing", "--yes"),
    ],
)  # fmt: skip
def test_cli_reports_missing_objects(database_url: str, args: tuple[str, ...]) -> None:
    result = _paygrid(database_url, *args)
    assert result.returncode == 1
    assert result.stderr.startswith("error: No such"), result.stderr
    assert "missing" in result.stderr or "nobody@example.com" in result.stderr


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


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "paygrid.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"paygrid {importlib.metadata.version('paygrid')}"


async def test_lists_print_full_ids_at_80_columns_and_json(
    database_url: str, pool: asyncpg.Pool
) -> None:
    name = "A merchant whose name is long enough to squeeze an 80-column table " * 2
    created = json.loads(
        _paygrid(database_url, "merchants", "create", "--name", name, "--json").stdout
    )
    merchant_id = created["id"]
    email = f"ops-{merchant_id.lower()}@example.com"
    added = _paygrid(
        database_url, "users", "create", "--merchant", merchant_id, "--email", email,
        "--role", "viewer", "--password", "long-enough-password",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    key_ids = [
        r["id"]
        for r in await pool.fetch("SELECT id FROM api_keys WHERE merchant_id = $1", merchant_id)
    ]
    user_id = await pool.fetchval("SELECT id FROM dashboard_users WHERE email = $1", email)
    for args, ids in (
        (("merchants", "list"), [merchant_id]),
        (("keys", "list", "--merchant", merchant_id), key_ids),
        (("users", "list", "--merchant", merchant_id), [user_id]),
    ):
        table = _paygrid(database_url, *args, columns=80)
        assert table.returncode == 0, table.stderr
        for full_id in ids:
            # Whole, on one line: not cut with an ellipsis, not wrapped.
            assert any(full_id in line.split() for line in table.stdout.splitlines()), (
                full_id,
                table.stdout,
            )
        as_json = _paygrid(database_url, *args, "--json", columns=80)
        assert as_json.returncode == 0, as_json.stderr
        listed = json.loads(as_json.stdout)
        assert set(ids) <= {row["id"] for row in listed}
    users = listed  # the last list: this merchant's dashboard users
    assert users == [
        {
            "id": user_id,
            "merchant": merchant_id,
            "email": email,
            "role": "viewer",
            "created": users[0]["created"],
            "last_login": "",
            "disabled": "",
        }
    ]
    assert "password" not in json.dumps(users)


async def test_users_set_password_replaces_it_and_ends_sessions(
    database_url: str, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    email = f"reset-{merchant.id.lower()}@example.com"
    user = await dashboard_users.create_user(
        pool, merchant_id=merchant.id, email=email, role="admin", password="the-old-password"
    )
    await dashboard_db.insert_session(
        pool,
        b"h-token-hash-" + merchant.id.encode(),
        user.id,
        "csrf",
        SYSTEM_CLOCK.now() + timedelta(hours=1),
    )
    too_short = _paygrid(database_url, "users", "set-password", email, "--password", "short")
    assert too_short.returncode == 1 and "at least 10" in too_short.stderr
    changed = _paygrid(
        database_url, "users", "set-password", email.upper(), "--password", "the-new-password"
    )
    assert changed.returncode == 0, changed.stderr
    assert user.id in changed.stdout
    assert await dashboard_users.verify_login(pool, email, "the-new-password") is not None
    assert await dashboard_users.verify_login(pool, email, "the-old-password") is None
    open_sessions = await pool.fetchval(
        "SELECT count(*) FROM dashboard_sessions WHERE user_id = $1 AND revoked_at IS NULL", user.id
    )
    assert open_sessions == 0


def _without_database_env(**extra: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PAYGRID_DATABASE_URL", "PAYGRID_DATA_DIR", "XDG_RUNTIME_DIR")
    }
    return {**environment, **extra}


@pytest.mark.slow
def test_every_command_finds_the_same_data_directory_and_says_when_it_creates_one(
    tmp_path: Path,
) -> None:
    """With no PAYGRID_DATA_DIR, the embedded database lives in the per-user data directory,
    wherever the command runs; the first command says it creates it, and where; and nothing
    warns (not even platformdirs' RuntimeDirWarning, with XDG_RUNTIME_DIR unset)."""
    home = tmp_path / "data-home"
    data_dir = home / "paygrid"
    env = _without_database_env(XDG_DATA_HOME=str(home), PYTHONWARNINGS="default")
    first_cwd, second_cwd = tmp_path / "one", tmp_path / "two"
    first_cwd.mkdir()
    second_cwd.mkdir()
    (first_cwd / ".paygrid" / "pg").mkdir(parents=True)
    (first_cwd / ".paygrid" / "pg" / "PG_VERSION").write_text("16\n")  # an older default
    runs = []
    for cwd in (first_cwd, second_cwd):
        runs.append(
            subprocess.run(
                [sys.executable, "-m", "paygrid.cli", "merchants", "list", "--json"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        )
    first, second = runs
    assert first.returncode == 0, first.stderr
    assert f"No database in {data_dir} yet: creating a new one there" in first.stderr
    assert f"PAYGRID_DATA_DIR={first_cwd / '.paygrid'}" in first.stderr
    assert (data_dir / "pg" / "PG_VERSION").exists()
    assert second.returncode == 0, second.stderr
    assert "No database" not in second.stderr  # the same one, found from elsewhere
    assert json.loads(second.stdout) == json.loads(first.stdout) == []
    for run in runs:
        assert "Warning" not in run.stderr, run.stderr


def _healthy(url: str, seconds: float = 60.0) -> bool:
    """The addresses are printed before uvicorn listens: wait (bounded) until it answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            time.sleep(0.2)
    return False


@pytest.mark.slow
def test_serve_prints_its_addresses_in_80_columns_without_warnings(
    server_url: str, tmp_path: Path
) -> None:
    # A database of its own: its in-process worker must not pick up other tests' jobs
    # (sealed under another data directory's encryption key) and warn about them.
    with scratch_database(server_url, "paygrid_serve") as database_url:
        _serve_prints_its_addresses(database_url, tmp_path)


def _serve_prints_its_addresses(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = _without_database_env(
        PAYGRID_DATABASE_URL=database_url,
        PAYGRID_DATA_DIR=str(tmp_path),
        PAYGRID_PORT=str(port),
        COLUMNS="80",
        PYTHONWARNINGS="default",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "paygrid.cli", "serve", "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # A server that never prints its last line must not hang the suite: stop it after a bound.
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        assert _healthy(f"http://127.0.0.1:{port}/healthz")
    finally:
        watchdog.cancel()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    demo = json.loads((tmp_path / "demo.json").read_text())
    password = json.loads((tmp_path / "demo_dashboard.json").read_text())["password"]
    printed = dict(line.split(":", 1) for line in lines[:-1])
    assert printed["paygrid"].strip() == f"http://127.0.0.1:{port}"
    assert printed["dashboard"].strip() == f"http://127.0.0.1:{port}/dashboard"
    assert printed["demo store"].strip() == f"http://127.0.0.1:{port}/demo/store"
    assert printed["dashboard login"].strip() == f"demo@paygrid.local / {password}"
    assert printed["secret key"].strip() == demo["secret_key"]
    assert all(len(line) <= 80 for line in lines), lines
    assert "Warning" not in stderr
    assert '"level":"warning"' not in stderr and '"level":"error"' not in stderr, stderr
