"""Render paygrid's Kustomize manifests and validate every object they contain.

``make lint`` runs ``python -m tests.deploy.kubernetes_manifests``; tests/deploy/
test_kubernetes.py imports it. Rendering is ``kubectl kustomize`` (Kustomize as built into
kubectl, what operators run; it needs no cluster and no network for local bases).

Validation never skips an object. Built-in kinds are checked by kubernetes-validate with
its *strict* schemas (an unknown field is an error, where the API server would drop it or
warn) against the oldest Kubernetes paygrid supports and the newest the installed
kubernetes-validate knows. kubernetes-validate only warns, and passes, when it has no
schema for a kind (a CRD); here that is an error instead, and the one CRD paygrid uses,
the Prometheus Operator's ServiceMonitor, is checked against the JSON schema in
deploy/kubernetes/schemas/ (its source is noted in it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES_DIR / "base"
PRODUCTION = KUBERNETES_DIR / "overlays" / "production"
KUSTOMIZATIONS = (BASE, PRODUCTION)
# The oldest Kubernetes the manifests must work on (preStop `sleep` is 1.30's), then the
# newest the installed kubernetes-validate has schemas for.
OLDEST_KUBERNETES = "1.30"
CRD_SCHEMAS: dict[tuple[str, str], Path] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): KUBERNETES_DIR
    / "schemas"
    / "servicemonitor-monitoring.coreos.com-v1.json",
}

Manifest = dict[str, Any]


class RenderError(Exception):
    """``kubectl kustomize`` failed."""


@dataclass(frozen=True)
class Problem:
    """One object that does not validate."""

    object: str
    version: str
    message: str

    def __str__(self) -> str:
        return f"{self.object} (Kubernetes {self.version}): {self.message}"


def kubernetes_versions() -> tuple[str, ...]:
    newest = kubernetes_validate.latest_version()
    assert isinstance(newest, str)
    return (OLDEST_KUBERNETES, ".".join(newest.split(".")[:2]))


def render(kustomization: Path) -> list[Manifest]:
    """The objects ``kubectl kustomize`` renders from ``kustomization``."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RenderError("kubectl is not installed (Kustomize is built into it)")
    done = subprocess.run(
        [kubectl, "kustomize", str(kustomization)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RenderError(f"kubectl kustomize {kustomization}: {done.stderr.strip()}")
    return [item for item in yaml.safe_load_all(done.stdout) if item]


def name_of(manifest: Manifest) -> str:
    metadata = manifest.get("metadata") or {}
    return f"{manifest.get('kind', '?')}/{metadata.get('name', '?')}"


def validate(manifests: Sequence[Manifest], versions: Sequence[str]) -> list[Problem]:
    """Every problem of every object, for each Kubernetes version; none is skipped."""
    problems: list[Problem] = []
    for manifest in manifests:
        for version in versions:
            message = _problem(manifest, version)
            if message is not None:
                problems.append(Problem(name_of(manifest), version, message))
    return problems


def _problem(manifest: Manifest, version: str) -> str | None:
    key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
    crd_schema = CRD_SCHEMAS.get(key)
    if crd_schema is not None:
        schema = json.loads(crd_schema.read_text())
        errors = sorted(
            jsonschema.Draft202012Validator(schema).iter_errors(manifest), key=lambda e: e.path
        )
        return "; ".join(_where(error) for error in errors) or None
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return _where(error)
    except kubernetes_validate.SchemaNotFoundError as error:
        # kubernetes-validate's own command only warns here; an unknown kind must not pass.
        return f"no schema: {error.message}"
    return None


def _where(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path) or "(object)"
    return f"{path}: {error.message}"


def main() -> int:
    versions = kubernetes_versions()
    failed = False
    for kustomization in KUSTOMIZATIONS:
        where = kustomization.relative_to(ROOT)
        try:
            manifests = render(kustomization)
        except RenderError as error:
            print(f"FAIL {error}", file=sys.stderr)
            failed = True
            continue
        problems = validate(manifests, versions)
        for problem in problems:
            print(f"FAIL {where}: {problem}", file=sys.stderr)
        failed = failed or bool(problems) or not manifests
        if not problems:
            print(
                f"ok   {where}: {len(manifests)} objects valid against Kubernetes "
                f"{' and '.join(versions)}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
