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

On top of the schemas, paygrid's own rules (``problems``): every pod is hardened (non-root,
read-only root filesystem, no capabilities, RuntimeDefault seccomp), and the backup
CronJob creates then verifies the same archive, one run at a time, on its volume, straight
to PostgreSQL. tests/deploy/test_kubernetes.py shows that each rule catches what it is for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
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
BACKUP_CRONJOB = "paygrid-backup"
BACKUP_CLAIM = "paygrid-backups"
# The backup script: the file `create` prints is the one `verify` gets, and PAYGRID_DATABASE_URL
# is the direct URL (when the Secret has one) before either runs.
BACKUP_DIRECT_URL = (
    'export PAYGRID_DATABASE_URL="${PAYGRID_DATABASE_DIRECT_URL:-$PAYGRID_DATABASE_URL}"'
)
BACKUP_CREATE_THEN_VERIFY = re.compile(
    r"^(\w+)=\$\(paygrid backup create\)\n(?:exec )?paygrid backup verify \"\$\1\"$", re.MULTILINE
)


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


def pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    """The pod template's spec of a Deployment, Job or CronJob; None for other kinds."""
    spec: dict[str, Any] = manifest.get("spec") or {}
    if manifest.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif manifest.get("kind") not in {"Deployment", "Job"}:
        return None
    found: dict[str, Any] = (spec.get("template") or {}).get("spec") or {}
    return found


def problems(manifests: Sequence[Manifest]) -> list[str]:
    """Every broken paygrid rule, as a sentence; empty when the manifests are as they must be."""
    found: list[str] = []
    for manifest in manifests:
        spec = pod_spec(manifest)
        if spec is not None:
            found += [f"{name_of(manifest)}: {p}" for p in _hardening_problems(spec)]
    cronjobs = [m for m in manifests if name_of(m) == f"CronJob/{BACKUP_CRONJOB}"]
    if len(cronjobs) != 1:
        return [*found, f"CronJob/{BACKUP_CRONJOB}: {len(cronjobs)} found, not 1"]
    where = f"CronJob/{BACKUP_CRONJOB}"
    found += [f"{where}: {p}" for p in _backup_problems(cronjobs[0], manifests)]
    return found


def _hardening_problems(spec: dict[str, Any]) -> Iterator[str]:
    pod = spec.get("securityContext") or {}
    if pod.get("runAsNonRoot") is not True or not pod.get("runAsUser"):
        yield "the pod must run as a non-root user (runAsNonRoot, runAsUser)"
    if (pod.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        yield "the pod's seccompProfile must be RuntimeDefault"
    if spec.get("automountServiceAccountToken") is not False:
        yield "the pod must not mount a service account token"
    for container in spec.get("containers") or []:
        context = container.get("securityContext") or {}
        name = container.get("name")
        if context.get("readOnlyRootFilesystem") is not True:
            yield f"container {name} must have readOnlyRootFilesystem"
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"container {name} must not allow privilege escalation"
        if (context.get("capabilities") or {}).get("drop") != ["ALL"]:
            yield f"container {name} must drop ALL capabilities"


def _backup_problems(cronjob: Manifest, manifests: Sequence[Manifest]) -> Iterator[str]:
    spec = cronjob["spec"]
    job = (spec.get("jobTemplate") or {}).get("spec") or {}
    pod = pod_spec(cronjob) or {}
    if spec.get("concurrencyPolicy") != "Forbid":
        yield "concurrencyPolicy must be Forbid (two backups at once)"
    if not spec.get("startingDeadlineSeconds"):
        yield "startingDeadlineSeconds must be set"
    if not job.get("activeDeadlineSeconds") or job.get("backoffLimit", 6) > 1:
        yield "its Job needs activeDeadlineSeconds and backoffLimit of at most 1"
    if pod.get("restartPolicy") != "Never":
        yield "restartPolicy must be Never"
    containers = pod.get("containers") or []
    if len(containers) != 1:
        yield "it must have exactly one container"
        return
    yield from _backup_container_problems(containers[0], pod, manifests)


def _backup_container_problems(
    container: dict[str, Any], pod: dict[str, Any], manifests: Sequence[Manifest]
) -> Iterator[str]:
    script = "\n".join(container.get("args") or [])
    if container.get("command") != ["sh", "-c"] or not BACKUP_CREATE_THEN_VERIFY.search(script):
        yield "its script must verify the very file `paygrid backup create` printed"
    env = {e["name"]: e for e in container.get("env") or []}
    direct = (env.get("PAYGRID_DATABASE_DIRECT_URL") or {}).get("valueFrom") or {}
    if (
        BACKUP_DIRECT_URL not in script.split("paygrid backup", 1)[0]
        or (env.get("PAYGRID_DATABASE_POOLER") or {}).get("value") != "none"
        or (direct.get("secretKeyRef") or {}).get("key") != "PAYGRID_DATABASE_DIRECT_URL"
    ):
        yield "it must reach PostgreSQL through PAYGRID_DATABASE_DIRECT_URL, not the pooler"
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("volumes") or []
        if "persistentVolumeClaim" in v
    }
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    directory = (env.get("PAYGRID_BACKUP_DIR") or {}).get("value")
    if claims.get(mounts.get(directory, "")) != BACKUP_CLAIM:
        yield f"PAYGRID_BACKUP_DIR must be where the claim {BACKUP_CLAIM} is mounted"
    if not any(name_of(m) == f"PersistentVolumeClaim/{BACKUP_CLAIM}" for m in manifests):
        yield f"the PersistentVolumeClaim {BACKUP_CLAIM} is missing"
    empty_dirs = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    if mounts.get("/tmp") not in empty_dirs:  # noqa: S108 (the pod's path, an emptyDir)
        yield "verify's temporary files need an emptyDir at /tmp"


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
        invalid = [*map(str, validate(manifests, versions)), *problems(manifests)]
        for problem in invalid:
            print(f"FAIL {where}: {problem}", file=sys.stderr)
        failed = failed or bool(invalid) or not manifests
        if not invalid:
            print(
                f"ok   {where}: {len(manifests)} objects valid against Kubernetes "
                f"{' and '.join(versions)}, and paygrid's rules hold"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
