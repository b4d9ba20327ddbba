"""The image's content, proven without a container engine: the wheel built by ``uv build``,
installed as the Dockerfile installs it (the locked dependencies, hash-checked, binary
wheels only, then the wheel itself, not editable) into a fresh virtual environment, runs
``paygrid migrate``, ``paygrid serve`` and ``paygrid worker`` against a database of its own.
A payment made through that API succeeds, and the worker delivers its signed webhook. Then
the backup CronJob's script backs that database up and verifies the archive with the
pg_dump and pg_restore the image has (pgserver's).

Anything the wheel lacks (migrations, templates, static files, guides) fails here, since
nothing of the source tree is on that environment's path."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from standardwebhooks import Webhook

from paygrid.db import engine
from tests.conftest import LOCAL_WEBHOOK_HOSTS, ROOT, auth, scratch_database
from tests.integration.test_worker_process import NO_RATE_LIMITS, _free_port
from tests.integration.webhook_receiver import Receiver, receiver
from tests.integration.worker_harness import eventually

pytestmark = pytest.mark.slow
STARTUP_SECONDS = 30
# The files besides Python code that the pages below need from the wheel: templates (/,
# /dashboard/login), static files and the guides rendered at /docs/<name>.
PAGES = ("/", "/dashboard/login", "/static/checkout.css", "/dashboard/static/dashboard.css")
GUIDE = "/docs/getting-started"


def _uv() -> str:
    """The uv that ``make`` installed beside the test interpreter (else the one on PATH)."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build and install the wheel (make installs it)")
    return found


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Installed:
    """A virtual environment with the built wheel installed, and its tool's environment."""

    venv: Path
    env: dict[str, str]

    def paygrid(self, *args: str) -> str:
        return _run(str(self.venv / "bin" / "paygrid"), *args, cwd=self.venv.parent, env=self.env)


def _install(work: Path) -> Path:
    """Build the wheel and install it the way the Dockerfile does; returns the venv."""
    uv = _uv()
    # uv's own cache makes this take seconds; its variables (UV_PROJECT_ENVIRONMENT, a
    # VIRTUAL_ENV of the caller) must not point it at the development environment.
    tool_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UV_", "VIRTUAL_ENV", "PYTHON"))
    }
    tool_env["UV_NO_PROGRESS"] = "1"
    dist = work / "dist"
    _run(uv, "build", "--wheel", "--out-dir", str(dist), cwd=ROOT, env=tool_env)
    requirements = work / "requirements.txt"
    _run(
        uv, "export", "--frozen", "--no-emit-project", "--format", "requirements-txt",
        "-o", str(requirements), cwd=ROOT, env=tool_env,
    )  # fmt: skip
    venv = work / "venv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, str(venv), cwd=work, env=tool_env)
    python = str(venv / "bin" / "python")
    _run(
        uv, "pip", "install", "--python", python, "--require-hashes", "--only-binary", ":all:",
        "-r", str(requirements), cwd=work, env=tool_env,
    )  # fmt: skip
    (wheel,) = dist.glob("paygrid-*.whl")
    _run(uv, "pip", "install", "--python", python, "--no-deps", str(wheel), cwd=work, env=tool_env)
    _run(uv, "pip", "check", "--python", python, cwd=work, env=tool_env)
    return venv


@pytest.fixture(scope="module")
def installed(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("wheel")
    venv = _install(work)
    port = _free_port()
    with scratch_database(server_url, "paygrid_wheel") as database_url:
        # Only what the image sets and compose.yaml passes: nothing of the development
        # environment (its PATH, PYTHONPATH or virtual environment) reaches these processes.
        env = {
            "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "LANG": "C.UTF-8",
            "PAYGRID_HOST": "0.0.0.0",  # as in the image  # noqa: S104 - the container's listen address
            "PAYGRID_PORT": str(port),
            "PAYGRID_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PAYGRID_DATA_DIR": str(work / "data"),
            "PAYGRID_DATABASE_URL": database_url,
            "PAYGRID_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "PAYGRID_WEBHOOK_ALLOWED_HOSTS": LOCAL_WEBHOOK_HOSTS,
            "PAYGRID_WORKER_POLL_SECONDS": "0.2",
            "PAYGRID_LOG_LEVEL": "WARNING",
            **NO_RATE_LIMITS,
        }
        yield Installed(venv, env)


def test_the_installed_package_is_the_wheel_not_the_source_tree(installed: Installed) -> None:
    where = _run(
        str(installed.venv / "bin" / "python"), "-c", "import paygrid; print(paygrid.__file__)",
        cwd=installed.venv.parent, env=installed.env,
    )  # fmt: skip
    package = Path(where.strip()).resolve()
    assert package.is_relative_to(installed.venv.resolve()), package
    assert not package.is_relative_to(ROOT / "src")
    assert (package.parent / "docs" / "getting-started.md").is_file()  # the guides ride along


@contextmanager
def _process(installed: Installed, command: str, log: Path) -> Iterator[int]:
    """``paygrid COMMAND`` from the installed environment; yields its pid, and stops it with
    SIGTERM (as the container engine does), failing with its log if it does not exit."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "paygrid"), command],
            cwd=installed.venv.parent,
            env={**installed.env, "PAYGRID_WORKER_IN_PROCESS": "false"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process.pid
            assert process.poll() is None, f"paygrid {command} exited:\n{log.read_text()}"
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                pytest.fail(f"paygrid {command} ignored SIGTERM:\n{log.read_text()}")


async def _ready(http: httpx.AsyncClient, logs: tuple[Path, ...]) -> dict[str, object]:
    """/readyz once it answers 200 and lists the standalone worker."""
    answer: dict[str, object] = {}

    async def ready() -> bool:
        try:
            response = await http.get("/readyz", timeout=2)
        except httpx.TransportError:
            return False
        answer.update(response.json() if response.status_code == 200 else {})
        return bool(answer.get("workers"))

    try:
        await eventually(ready, deadline=STARTUP_SECONDS)
    except TimeoutError:
        shown = "\n".join(f"{log.name}:\n{log.read_text()}" for log in logs)
        pytest.fail(f"serve or worker never became ready:\n{shown}")
    return answer


async def _delivered(
    hooks: Receiver, event_type: str, object_id: str
) -> tuple[bytes, dict[str, str]]:
    async def arrived() -> bool:
        return any(_matches(r.body, event_type, object_id) for r in hooks.received)

    await eventually(arrived, deadline=STARTUP_SECONDS)
    (received,) = [r for r in hooks.received if _matches(r.body, event_type, object_id)]
    return received.body, received.headers


def _matches(body: bytes, event_type: str, object_id: str) -> bool:
    event = json.loads(body)
    return bool(event["type"] == event_type and event["data"]["object"]["id"] == object_id)


async def test_migrate_serve_and_worker_from_the_wheel_take_a_payment_and_deliver_its_webhook(
    installed: Installed, tmp_path: Path
) -> None:
    assert engine.head_revision() in installed.paygrid("migrate")
    logs = (tmp_path / "serve.log", tmp_path / "worker.log")
    url = installed.env["PAYGRID_PUBLIC_URL"]
    with _process(installed, "serve", logs[0]), _process(installed, "worker", logs[1]):
        # While they start: the merchant, whose test keys come with it.
        created = await asyncio.to_thread(
            installed.paygrid, "merchants", "create", "--name", "Wheel shop", "--json"
        )
        secret_key = json.loads(created)["secret_key"]
        assert secret_key.startswith("sk_test_")
        async with (
            receiver() as hooks,
            httpx.AsyncClient(base_url=url, headers=auth(secret_key)) as http,
        ):
            await _pay_and_receive_the_webhook(http, hooks, logs)
    # With PAYGRID_DATABASE_URL set, no embedded PostgreSQL was started in the data directory.
    assert not (Path(installed.env["PAYGRID_DATA_DIR"]) / "pg").exists()


async def _pay_and_receive_the_webhook(
    http: httpx.AsyncClient, hooks: Receiver, logs: tuple[Path, ...]
) -> None:
    """Wait until serve and worker are ready, then pay and receive the signed webhook."""
    readiness = await _ready(http, logs)
    assert readiness["status"] == "ready", readiness
    for page in (*PAGES, GUIDE):
        shown = await http.get(page)
        assert shown.status_code == 200, (page, shown.text[:500])
    assert "docker compose up" in (await http.get("/docs/deploy")).text

    endpoint = await http.post(
        "/v1/webhook_endpoints", json={"url": hooks.url, "enabled_events": ["*"]}
    )
    assert endpoint.status_code == 200, endpoint.text
    payment = await http.post(
        "/v1/payments",
        json={"amount": 2000, "currency": "USD", "confirm": True, "payment_method": "pm_card_visa"},
        headers={"Idempotency-Key": "wheel-order-1"},
    )  # fmt: skip
    assert payment.status_code == 200, payment.text
    assert payment.json()["status"] == "succeeded"
    assert payment.json()["amount_received"] == 2000

    body, headers = await _delivered(hooks, "payment.succeeded", payment.json()["id"])
    event = Webhook(endpoint.json()["secret"]).verify(body, headers)
    assert event["data"]["object"]["amount_received"] == 2000


BACKUP_CRONJOB = ROOT / "deploy" / "kubernetes" / "base" / "backup-cronjob.yaml"
# What the CronJob's pod sets but the test must place elsewhere on this machine.
POD_PATHS = {"HOME", "PAYGRID_BACKUP_DIR", "PAYGRID_DATA_DIR"}


def test_the_backup_cronjobs_script_creates_and_verifies_an_archive_over_the_direct_url(
    installed: Installed, tmp_path: Path
) -> None:
    """The script of deploy/kubernetes/base/backup-cronjob.yaml, run by ``sh`` with the
    installed paygrid and the pod's own literal settings, as the production overlay's pod
    would run it: PAYGRID_DATABASE_URL is a PgBouncer that is not there (nothing listens on
    port 1) and PAYGRID_DATABASE_POOLER=transaction comes from the ConfigMap, so it passes
    only if every connection goes to PAYGRID_DATABASE_DIRECT_URL."""
    cronjob = yaml.safe_load(BACKUP_CRONJOB.read_text())
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    pod_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    backups = tmp_path / "backups"
    backups.mkdir()
    # The image has no other PostgreSQL client programs; this machine's Debian ones would be
    # picked first, so point at pgserver's in the installed environment.
    (pgserver_bin,) = installed.venv.glob("lib/python*/site-packages/pgserver/pginstall/bin")
    env = {
        **{k: v for k, v in installed.env.items() if k != "PAYGRID_ENCRYPTION_KEY"},
        "PAYGRID_DATABASE_POOLER": "transaction",  # envFrom: the production ConfigMap
        "PAYGRID_DATABASE_URL": "postgresql://paygrid@127.0.0.1:1/pgbouncer_is_not_here",
        "PAYGRID_DATABASE_DIRECT_URL": installed.env["PAYGRID_DATABASE_URL"],
        "PAYGRID_BACKUP_DIR": str(backups),
        "PAYGRID_PG_BIN_DIR": str(pgserver_bin),
        "TMPDIR": str(tmp_path),
        **{k: v for k, v in pod_env.items() if k not in POD_PATHS},  # env: over envFrom
    }
    done = subprocess.run(
        [*container["command"], *container["args"]],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    (archive,) = backups.glob("paygrid-*.pgbackup.tar")
    assert f"verified {archive}: " in done.stdout, done.stdout
    assert "pg_dump 16)" in done.stderr, done.stderr  # pgserver's PostgreSQL 16 programs
    listed = installed.paygrid("backup", "list", "--dir", str(backups))
    assert archive.name in listed and "passed" in listed, listed
