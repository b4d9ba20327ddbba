"""compose.yaml, its env files and the Dockerfiles, checked without a container engine: the
file is valid Compose, follows paygrid's rules (each rule shown to catch what it is for),
its env files come from committed examples without secrets, and the Dockerfiles pass
hadolint and build a non-root image whose entry point is ``paygrid``."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from dotenv import dotenv_values

from paygrid.config import Settings
from tests.deploy import compose_rules
from tests.deploy.compose_rules import COMPOSE_FILE, ROOT

COMPOSE_DIR = ROOT / "deploy" / "compose"
DOCKERFILES = (ROOT / "Dockerfile", COMPOSE_DIR / "pgbouncer" / "Dockerfile")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return compose_rules.load(COMPOSE_FILE.read_text())


def test_compose_file_is_valid_and_follows_the_rules(document: dict[str, Any]) -> None:
    assert compose_rules.problems(document) == []
    assert compose_rules.main() == 0
    named = set(compose_rules.services(document))
    assert {"postgres", "pgbouncer", "redis", "rabbitmq", "migrate"} <= named


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("services:\n  a:\n    image: x\n    restrat: always\n", "restrat"),
        ("services:\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: healthy\n", "unknown variant `healthy`"),
        ("services:\n  a:\n    image: x\n    healthcheck:\n      interval: soon\n", "interval"),
        ("services:\n  a:\n    image: x\n    deploy:\n      replicas: two\n", "replicas"),
    ],
)  # fmt: skip
def test_the_parser_rejects_what_compose_would(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        compose_rules.load(text)


def _drop_healthcheck(services: dict[str, Any]) -> None:
    del services["serve-2"]["healthcheck"]


def _one_worker(services: dict[str, Any]) -> None:
    services["worker"]["deploy"]["replicas"] = 1


def _started_is_not_healthy(services: dict[str, Any]) -> None:
    services["worker"]["depends_on"]["pgbouncer"]["condition"] = "service_started"


def _serve_without_migrate(services: dict[str, Any]) -> None:
    del services["serve-1"]["depends_on"]["migrate"]


def _migrate_restarts(services: dict[str, Any]) -> None:
    services["migrate"]["restart"] = "on-failure"


def _password_in_url(services: dict[str, Any]) -> None:
    services["worker"]["environment"]["PAYGRID_DATABASE_URL"] = "postgresql://u:hunter2@db/p"


def _literal_key(services: dict[str, Any]) -> None:
    services["serve-1"]["environment"]["PAYGRID_ENCRYPTION_KEY"] = "c2VjcmV0"


def _undeclared_volume(services: dict[str, Any]) -> None:
    services["redis"]["volumes"] = ["redis-data:/data"]


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        (_drop_healthcheck, "serve-2 has no health check"),
        (_one_worker, "2 paygrid worker processes wanted, 1 found"),
        (_started_is_not_healthy, "worker must wait for pgbouncer to be healthy"),
        (_serve_without_migrate, "serve-1 must start after migrate"),
        (_migrate_restarts, "migrate runs once"),
        (_password_in_url, "has a password in compose.yaml"),
        (_literal_key, "PAYGRID_ENCRYPTION_KEY is written in compose.yaml"),
        (_undeclared_volume, "redis mounts volume redis-data"),
    ],
)
def test_each_rule_catches_what_it_is_for(
    document: dict[str, Any], break_it: Callable[[dict[str, Any]], None], complaint: str
) -> None:
    broken = copy.deepcopy(document)
    break_it(broken["services"])
    assert any(complaint in problem for problem in compose_rules.problems(broken))


def _paygrid_names(text: str) -> set[str]:
    return set(re.findall(r"\bPAYGRID_[A-Z0-9_]+", text))


def test_every_paygrid_variable_named_is_a_setting() -> None:
    """Settings ignore unknown variables, so a misspelt name would silently do nothing."""
    settings = {f"PAYGRID_{name.upper()}" for name in Settings.model_fields}
    named = _paygrid_names(COMPOSE_FILE.read_text())
    named |= _paygrid_names((COMPOSE_DIR / "paygrid.env.example").read_text())
    assert {"PAYGRID_DATABASE_DIRECT_URL", "PAYGRID_DATABASE_POOLER"} <= named
    assert named - settings == set()


def test_env_files_come_from_committed_examples_and_are_never_committed(
    document: dict[str, Any], tmp_path: Path
) -> None:
    env_files = compose_rules.env_files(document)
    assert {path.name for path in env_files} == {
        "paygrid.env",
        "postgres.env",
        "pgbouncer.env",
        "rabbitmq.env",
    }
    for path in env_files:
        assert list(compose_rules.env_file_problems(path.with_name(path.name + ".example"))) == []
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(
            ["git", "check-ignore", *map(str, env_files)], cwd=ROOT, capture_output=True, text=True
        )
        assert set(ignored.stdout.split()) == {str(path) for path in env_files}
    leaky = tmp_path / "paygrid.env.example"
    leaky.write_text(
        "PAYGRID_ENCRYPTION_KEY=c2VjcmV0\nPAYGRID_DATABASE_URL=postgresql://u:hunter2@db/p\n"
    )
    assert len(list(compose_rules.env_file_problems(leaky))) == 2


def test_init_env_writes_secrets_once_and_paygrid_loads_them(tmp_path: Path) -> None:
    for example in [*COMPOSE_DIR.glob("*.env.example"), COMPOSE_DIR / "init-env.sh"]:
        shutil.copy(example, tmp_path)
    first = subprocess.run(["sh", "init-env.sh"], cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    written = {path.name: path.read_text() for path in tmp_path.glob("*.env")}
    assert set(written) == {"paygrid.env", "postgres.env", "pgbouncer.env", "rabbitmq.env"}
    assert all((tmp_path / name).stat().st_mode & 0o077 == 0 for name in written)

    values = {name: dotenv_values(tmp_path / name) for name in written}
    assert not [v for file in values.values() for v in file.values() if "__" in (v or "")]
    password = values["postgres.env"]["POSTGRES_PASSWORD"]
    assert password and len(password) >= 32
    assert values["pgbouncer.env"]["PGBOUNCER_PASSWORD"] == password
    settings = Settings(_env_file=tmp_path / "paygrid.env")
    assert settings.database_url is not None and settings.database_direct_url is not None
    pooled = urlsplit(settings.database_url.get_secret_value())
    direct = urlsplit(settings.database_direct_url.get_secret_value())
    assert (pooled.hostname, pooled.port, pooled.password) == ("pgbouncer", 6432, password)
    assert (direct.hostname, direct.port, direct.password) == ("postgres", 5432, password)
    assert settings.database_pooler == "transaction"
    assert settings.amqp_url is not None
    rabbit = urlsplit(settings.amqp_url.get_secret_value()).password
    assert rabbit == values["rabbitmq.env"]["RABBITMQ_DEFAULT_PASS"] != password
    settings.key_ring()  # a valid encryption key, not the placeholder

    again = subprocess.run(["sh", "init-env.sh"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count("kept") == 4, again.stdout
    assert {path.name: path.read_text() for path in tmp_path.glob("*.env")} == written


def test_pgbouncer_pools_transactions_in_front_of_postgres() -> None:
    config = (COMPOSE_DIR / "pgbouncer" / "pgbouncer.ini").read_text()
    settings = dict(re.findall(r"^(\w+) = ?(.*)$", config, re.MULTILINE))
    assert settings["pool_mode"] == "transaction"
    assert settings["listen_port"] == "6432"
    assert re.search(r"^\* = host=postgres port=5432$", config, re.MULTILINE)


def _stages(dockerfile: Path) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), stage by stage."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    stages: list[list[str]] = []
    for line in joined.splitlines():
        if line.startswith("FROM "):
            stages.append([])
        if stages and line.strip() and not line.startswith("#"):
            stages[-1].append(line.strip())
    return stages


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), *map(str, DOCKERFILES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_paygrid_as_a_user_without_build_tools() -> None:
    build, runtime = _stages(ROOT / "Dockerfile")
    assert any("uv build --wheel" in line for line in build)
    assert any("--require-hashes --only-binary :all:" in line for line in build)
    assert runtime[0].startswith("FROM ${PYTHON_IMAGE}")  # the same base as the build stage
    # The final stage installs nothing: no package manager, no compiler, no uv.
    assert not [line for line in runtime if re.search(r"apt-get|apk |pip |uv |gcc|cc ", line)]
    (user,) = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert user.split(":")[0] not in ("0", "root")
    (healthcheck,) = [line for line in runtime if line.startswith("HEALTHCHECK ")]
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck
    assert "curl" not in healthcheck
    assert 'ENTRYPOINT ["paygrid"]' in runtime
    assert "PAYGRID_HOST=0.0.0.0" in " ".join(runtime)
    # The build context is an allow list (no .venv, no deploy/compose/*.env with secrets),
    # and it holds everything the build stage copies.
    rules = [r for r in (ROOT / ".dockerignore").read_text().split("\n") if r and r[0] != "#"]
    assert rules[0] == "*"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "docs", "src"}
    copied = {
        source
        for line in build
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    }
    assert copied == allowed
