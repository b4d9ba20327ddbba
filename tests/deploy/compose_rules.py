"""What ``compose.yaml`` must be: valid Compose (the ``compose-spec`` package's parser), and
paygrid's own rules on top (health checks, start order, two API processes and two workers,
no secret written in the file). ``make lint`` runs it (``python -m tests.deploy.compose_rules``);
``tests/deploy/test_compose.py`` runs it too, and shows that each rule catches what it is for.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from compose_spec import PyCompose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
RUN_ONCE = frozenset({"migrate"})
# Each paygrid command and how many processes of it compose.yaml must run.
PROCESSES = {"serve": 2, "worker": 2}
# A variable whose name says it holds a secret, and a URL with a password in it.
SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|_KEY$|ENCRYPTION", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^/:@\s]+:([^@\s]+)@")
PLACEHOLDER = re.compile(r"^__[A-Z0-9_]+__$")


class _PlainDumper(yaml.SafeDumper):
    """Writes shared values out in full (no anchors), as Compose sees them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def load(text: str) -> dict[str, Any]:
    """The file as Compose reads it (YAML merge keys resolved), once the compose-spec parser
    accepted it; raises ``ValueError`` naming the first invalid field."""
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError("compose.yaml is not a mapping")
    parsed = PyCompose.from_yaml(yaml.dump(document, Dumper=_PlainDumper))
    parsed.validate()  # references to networks, volumes, configs and secrets
    parsed.to_spec()  # and the Compose Specification's models
    return document


def services(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = document.get("services") or {}
    return found


def problems(document: Mapping[str, Any]) -> list[str]:
    """Every broken rule, as a sentence; empty when the file is as it must be."""
    return [
        *_health_checks(document),
        *_start_order(document),
        *_process_counts(document),
        *_volumes(document),
        *_literal_secrets(document),
    ]


def _health_checks(document: Mapping[str, Any]) -> Iterator[str]:
    for name, service in services(document).items():
        check = service.get("healthcheck") or {}
        if name in RUN_ONCE:
            if service.get("restart", "no") != "no":
                yield f"{name} runs once: its restart policy must be 'no'"
        elif check.get("disable") or not check.get("test"):
            yield f"{name} has no health check"


def _start_order(document: Mapping[str, Any]) -> Iterator[str]:
    known = services(document)
    for name, service in known.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            yield f"{name}: depends_on must give each dependency a condition"
            continue
        for target, rule in depends.items():
            condition = (rule or {}).get("condition")
            if target not in known:
                yield f"{name} depends on {target}, which is not a service"
            elif target in RUN_ONCE and condition != "service_completed_successfully":
                yield f"{name} must wait for {target} to complete successfully"
            elif target not in RUN_ONCE and condition != "service_healthy":
                yield f"{name} must wait for {target} to be healthy"
        if _command(service) in PROCESSES and not set(depends) >= RUN_ONCE:
            yield f"{name} must start after {', '.join(sorted(RUN_ONCE))}"


def _command(service: Mapping[str, Any]) -> str | None:
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    return command[0] if command else None


def _process_counts(document: Mapping[str, Any]) -> Iterator[str]:
    counts = dict.fromkeys(PROCESSES, 0)
    for service in services(document).values():
        command = _command(service)
        if command in counts:
            counts[command] += int((service.get("deploy") or {}).get("replicas", 1))
    for command, wanted in PROCESSES.items():
        if counts[command] != wanted:
            yield f"{wanted} paygrid {command} processes wanted, {counts[command]} found"


def _volumes(document: Mapping[str, Any]) -> Iterator[str]:
    declared = set(document.get("volumes") or {})
    for name, service in services(document).items():
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source")
            if source and not source.startswith((".", "/", "~")) and source not in declared:
                yield f"{name} mounts volume {source}, which is not declared"


def _literal_secrets(document: Mapping[str, Any]) -> Iterator[str]:
    for name, service in services(document).items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for variable, value in environment.items():
            text = "" if value is None else str(value)
            if SECRET_NAME.search(variable) and text:
                yield f"{name}: {variable} is written in compose.yaml; put it in an env file"
            if URL_PASSWORD.search(text):
                yield f"{name}: {variable} has a password in compose.yaml; use an env file"


def env_file_problems(path: Path) -> Iterator[str]:
    """A committed example env file holds placeholders, never a secret value."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        variable, _, value = line.partition("=")
        if line.startswith("#") or not value:
            continue
        where = f"{path.name}:{number}"
        if SECRET_NAME.search(variable) and not PLACEHOLDER.match(value):
            yield f"{where}: {variable} must be a __NAME__ placeholder"
        for password in URL_PASSWORD.findall(value):
            if not PLACEHOLDER.match(password):
                yield f"{where}: the password in {variable} must be a __NAME__ placeholder"


def env_files(document: Mapping[str, Any]) -> set[Path]:
    """Every env file the services read (each must have a committed ``.example``)."""
    found = set()
    for service in services(document).values():
        listed = service.get("env_file") or []
        for entry in [listed] if isinstance(listed, str | dict) else listed:
            found.add(ROOT / (entry if isinstance(entry, str) else entry["path"]))
    return found


def main() -> int:
    try:
        document = load(COMPOSE_FILE.read_text())
    except ValueError as error:
        print(f"compose.yaml: {error}", file=sys.stderr)
        return 1
    found = problems(document)
    for env_file in sorted(env_files(document)):
        example = env_file.with_name(env_file.name + ".example")
        if not example.is_file():
            found.append(f"{env_file.name} has no committed {example.name}")
        else:
            found.extend(env_file_problems(example))
    for problem in found:
        print(f"compose.yaml: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
