"""The Kubernetes manifests (deploy/kubernetes): what they render to, object by object.

Rendered with ``kubectl kustomize`` and validated by tests/deploy/kubernetes_manifests.py
(also run by ``make lint``); never applied to a cluster here.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paygrid.config import Settings
from tests.deploy import kubernetes_manifests as k8s
from tests.deploy.kubernetes_manifests import Manifest

if shutil.which("kubectl") is None:
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("kubectl is missing: CI must render the Kubernetes manifests")
    pytest.skip("kubectl is not installed", allow_module_level=True)

VERSIONS = k8s.kubernetes_versions()
CONTAINER_TMP = "/tmp"  # noqa: S108 (a path inside the pods, where an emptyDir is mounted)


@pytest.fixture(scope="module")
def base() -> list[Manifest]:
    return k8s.render(k8s.BASE)


@pytest.fixture(scope="module", params=["base", "production"])
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    kustomization = k8s.BASE if request.param == "base" else k8s.PRODUCTION
    return k8s.render(kustomization)


def only(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The pod spec of every Deployment, Job and CronJob."""
    for manifest in manifests:
        spec = k8s.pod_spec(manifest)
        if spec is not None:
            yield k8s.name_of(manifest), spec


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def test_every_object_validates(rendered: list[Manifest]) -> None:
    kinds = {m["kind"] for m in rendered}
    assert {
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "ConfigMap",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "NetworkPolicy",
        "CronJob",
        "PersistentVolumeClaim",
    } <= kinds
    assert k8s.validate(rendered, VERSIONS) == []
    assert k8s.problems(rendered) == []


def test_probes_and_commands(rendered: list[Manifest]) -> None:
    serve = only(rendered, "Deployment", "paygrid-serve")["spec"]["template"]["spec"]
    (container,) = serve["containers"]
    assert container["command"] + container["args"] == ["paygrid", "serve"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PAYGRID_WORKER_IN_PROCESS"] == "false"  # the worker Deployment runs jobs
    worker = only(rendered, "Deployment", "paygrid-worker")["spec"]
    assert worker["replicas"] >= 2
    (container,) = worker["template"]["spec"]["containers"]
    assert container["command"] + container["args"] == ["paygrid", "worker"]
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    job = only(rendered, "Job", "paygrid-migrate")["spec"]["template"]["spec"]
    (container,) = job["containers"]
    assert container["command"] + container["args"] == ["paygrid", "migrate"]
    assert job["restartPolicy"] == "Never"


def _backup(rendered: list[Manifest]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The backup CronJob's spec, its pod's spec and its one container."""
    cronjob = only(rendered, "CronJob", k8s.BACKUP_CRONJOB)
    pod = k8s.pod_spec(cronjob)
    assert pod is not None
    (container,) = pod["containers"]
    return cronjob["spec"], pod, container


def test_the_backup_cronjob_creates_and_verifies_one_archive_a_night(
    rendered: list[Manifest],
) -> None:
    spec, pod, container = _backup(rendered)
    assert (spec["schedule"], spec["timeZone"]) == ("15 2 * * *", "Etc/UTC")
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] > 0 and spec["failedJobsHistoryLimit"] > 0
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 1 and 0 < job["activeDeadlineSeconds"] < 24 * 3600
    assert pod["restartPolicy"] == "Never"
    # The same image and settings as the API, from the same ConfigMap and Secret.
    (serve,) = only(rendered, "Deployment", "paygrid-serve")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == serve["image"]
    assert container["envFrom"] == serve["envFrom"]
    env = {e["name"]: e for e in container["env"]}
    assert "PAYGRID_ENCRYPTION_KEY" not in env  # a backup copies ciphertext, needs no key
    # The archives go to the claim, mounted where PAYGRID_BACKUP_DIR says.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    (volume,) = [
        v for v in pod["volumes"] if v["name"] == mounts[env["PAYGRID_BACKUP_DIR"]["value"]]
    ]
    assert volume["persistentVolumeClaim"] == {"claimName": k8s.BACKUP_CLAIM}
    claim = only(rendered, "PersistentVolumeClaim", k8s.BACKUP_CLAIM)["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert claim["resources"]["requests"]["storage"]
    assert "storageClassName" not in claim  # the cluster's default, or the overlay's


def _run_backup_script(
    container: dict[str, Any], tmp_path: Path, fail_create: bool = False, **secret: str
) -> tuple[int, list[str]]:
    """The CronJob's script, run by sh with a stand-in ``paygrid`` on PATH that logs each
    call's arguments and PAYGRID_DATABASE_URL (the real one runs in test_wheel_install.py)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "paygrid"
    create = "exit 1" if fail_create else "echo /backups/a.pgbackup.tar"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "$* @ $PAYGRID_DATABASE_URL" >> "$CALLS"\n'
        f'if [ "$2" = create ]; then {create}; fi\n'
    )
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), **secret}
    done = subprocess.run(
        [*container["command"], *container["args"]], env=env, check=False, capture_output=True
    )
    return done.returncode, calls.read_text().splitlines() if calls.exists() else []


def test_the_backup_script_verifies_the_file_it_created_over_the_direct_url(
    base: list[Manifest], tmp_path: Path
) -> None:
    _spec, _pod, container = _backup(base)
    pooled, direct = "postgresql://pgbouncer:6432/p", "postgresql://postgres:5432/p"
    code, calls = _run_backup_script(
        container, tmp_path / "a", PAYGRID_DATABASE_URL=pooled, PAYGRID_DATABASE_DIRECT_URL=direct
    )
    assert code == 0
    assert calls == [
        f"backup create @ {direct}",
        f"backup verify /backups/a.pgbackup.tar @ {direct}",
    ]
    # Without a pooler the Secret has no direct URL: PAYGRID_DATABASE_URL is the direct one.
    code, calls = _run_backup_script(container, tmp_path / "b", PAYGRID_DATABASE_URL=direct)
    assert code == 0 and [c.split(" @ ")[1] for c in calls] == [direct, direct]
    # A failed create fails the Job, and nothing is verified.
    code, calls = _run_backup_script(
        container, tmp_path / "c", fail_create=True, PAYGRID_DATABASE_URL=direct
    )
    assert code != 0 and calls == [f"backup create @ {direct}"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PAYGRID_DATABASE_POOLER"] == "none"  # over the ConfigMap's `transaction`


def test_the_api_autoscales_from_3_to_50_at_70_percent_cpu(rendered: list[Manifest]) -> None:
    hpa = only(rendered, "HorizontalPodAutoscaler", "paygrid-serve")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "paygrid-serve",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 50)
    (metric,) = spec["metrics"]
    assert metric["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }
    serve = only(rendered, "Deployment", "paygrid-serve")
    assert "replicas" not in serve["spec"]  # owned by the autoscaler; an apply would reset it


def test_pods_run_as_non_root_on_a_read_only_root(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts[CONTAINER_TMP] in tmp_volumes, name


def test_every_container_has_resources(rendered: list[Manifest]) -> None:
    seen = 0
    for name, spec in pod_specs(rendered):
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), name
            assert {"cpu", "memory"} <= resources["limits"].keys(), name
            seen += 1
    assert seen == 4  # serve, worker, migrate, backup


def test_pods_spread_and_disruptions_are_bounded(rendered: list[Manifest]) -> None:
    for deployment in ("paygrid-serve", "paygrid-worker"):
        template = only(rendered, "Deployment", deployment)["spec"]["template"]
        constraints = template["spec"]["topologySpreadConstraints"]
        assert "kubernetes.io/hostname" in {c["topologyKey"] for c in constraints}
        for constraint in constraints:
            assert selects(
                constraint["labelSelector"]["matchLabels"], template["metadata"]["labels"]
            )
    for budget, deployment in (
        ("paygrid-serve", "paygrid-serve"),
        ("paygrid-worker", "paygrid-worker"),
    ):
        pdb = only(rendered, "PodDisruptionBudget", budget)["spec"]
        assert pdb["maxUnavailable"] == 1
        labels = only(rendered, "Deployment", deployment)["spec"]["template"]["metadata"]["labels"]
        assert selects(pdb["selector"]["matchLabels"], labels)


def test_the_service_and_ingress_reach_the_api_pods_only(rendered: list[Manifest]) -> None:
    service = only(rendered, "Service", "paygrid")
    selector = service["spec"]["selector"]
    labels = {
        name: only(rendered, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        for name in ("paygrid-serve", "paygrid-worker")
    }
    assert selects(selector, labels["paygrid-serve"])
    assert not selects(selector, labels["paygrid-worker"])
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    paths = only(rendered, "Ingress", "paygrid")["spec"]["rules"][0]["http"]["paths"]
    backends = {p["path"]: p["backend"]["service"]["name"] for p in paths}
    assert backends == {"/": "paygrid", "/metrics": "paygrid-metrics-blocked"}
    blocked = only(rendered, "Service", "paygrid-metrics-blocked")["spec"]
    assert "selector" not in blocked  # no endpoints: /metrics is never forwarded


def test_prometheus_scrapes_metrics_of_api_and_workers(rendered: list[Manifest]) -> None:
    monitor = only(rendered, "ServiceMonitor", "paygrid")["spec"]
    assert {(e["port"], e["path"]) for e in monitor["endpoints"]} == {
        ("http", "/metrics"),
        ("metrics", "/metrics"),
    }
    expression = monitor["selector"]["matchExpressions"][0]
    assert set(expression["values"]) == {"api", "worker"}


def test_network_policies_admit_only_the_ingress_and_prometheus(
    rendered: list[Manifest],
) -> None:
    policies = {m["metadata"]["name"]: m["spec"] for m in rendered if m["kind"] == "NetworkPolicy"}
    deny = policies["paygrid-deny-ingress"]
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "paygrid"}
    (rule,) = policies["paygrid-api"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    sources = {
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in rule["from"]
    }
    assert sources == {"ingress-nginx", "monitoring"}
    # The backup pods: nothing in (the default deny selects them too), out only DNS and
    # PostgreSQL; no policy that admits traffic selects them.
    labels = only(rendered, "CronJob", k8s.BACKUP_CRONJOB)["spec"]["jobTemplate"]["spec"][
        "template"
    ]["metadata"]["labels"]
    selecting = {n for n, p in policies.items() if selects(p["podSelector"]["matchLabels"], labels)}
    assert selecting == {"paygrid-deny-ingress", "paygrid-backup"}
    backup = policies["paygrid-backup"]
    assert backup["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in backup
    ports = {(p["port"], p["protocol"]) for rule in backup["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (5432, "TCP")}
    assert all("to" not in rule for rule in backup["egress"])  # wherever PostgreSQL runs


def test_secrets_are_referenced_never_committed(rendered: list[Manifest]) -> None:
    assert not [m for m in rendered if m["kind"] == "Secret"]
    (config,) = [m for m in rendered if m["kind"] == "ConfigMap"]
    assert not {"PAYGRID_DATABASE_URL", "PAYGRID_ENCRYPTION_KEY"} & config["data"].keys()
    assert not any(
        re.search(r"(URL|KEY|PASSWORD|SECRET)", key)
        for key in config["data"]
        if key != "PAYGRID_PUBLIC_URL"
    )
    for name, spec in pod_specs(rendered):
        for container in spec["containers"]:
            env = {e["name"]: e for e in container["env"]}
            database = env["PAYGRID_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert database == {"name": "paygrid", "key": "PAYGRID_DATABASE_URL"}, name
            direct = env["PAYGRID_DATABASE_DIRECT_URL"]["valueFrom"]["secretKeyRef"]
            assert direct["name"] == "paygrid" and direct["optional"] is True, name
            for variable in env.values():
                if re.search(r"(URL|KEY|PASSWORD|SECRET)$", variable["name"]):
                    assert "value" not in variable, f"{name}: {variable['name']} is literal"
    for deployment in ("paygrid-serve", "paygrid-worker"):
        (container,) = only(rendered, "Deployment", deployment)["spec"]["template"]["spec"][
            "containers"
        ]
        keys = {
            e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
        }
        # Every pod must encrypt with the same key: without it, each would make its own.
        assert "optional" not in keys["PAYGRID_ENCRYPTION_KEY"]


def test_every_setting_is_one_paygrid_knows(rendered: list[Manifest]) -> None:
    """paygrid ignores unknown PAYGRID_* variables: a misspelt one would silently not apply."""
    known = {f"PAYGRID_{name.upper()}" for name in Settings.model_fields}
    (config,) = [m for m in rendered if m["kind"] == "ConfigMap"]
    assert set(config["data"]) <= known
    for name, spec in pod_specs(rendered):
        for container in spec["containers"]:
            variables = {e["name"] for e in container["env"] if e["name"].startswith("PAYGRID_")}
            assert variables <= known, name
    # And their values parse (the Secret's, which are not here, stand in as placeholders).
    values = {key.removeprefix("PAYGRID_").lower(): value for key, value in config["data"].items()}
    settings = Settings(database_direct_url="postgresql://direct/paygrid", **values)
    assert (settings.port, settings.http_workers, settings.worker_metrics_port) == (8000, 1, 9100)


def test_the_production_overlay_sets_namespace_image_and_host() -> None:
    rendered = k8s.render(k8s.PRODUCTION)
    assert {m["metadata"].get("namespace") for m in rendered} == {"paygrid"}
    for _name, spec in pod_specs(rendered):
        assert spec["containers"][0]["image"] == "registry.example.com/paygrid:0.1.0"
    ingress = only(rendered, "Ingress", "paygrid")["spec"]
    assert ingress["tls"][0]["hosts"] == [ingress["rules"][0]["host"]] == ["pay.example.com"]
    (config,) = [m for m in rendered if m["kind"] == "ConfigMap"]
    # Behind PgBouncer: paygrid then needs PAYGRID_DATABASE_DIRECT_URL, which every pod
    # reads from the Secret (test_secrets_are_referenced_never_committed).
    assert config["data"]["PAYGRID_DATABASE_POOLER"] == "transaction"
    assert config["data"]["PAYGRID_PUBLIC_URL"] == "https://pay.example.com"


def test_the_validator_rejects_broken_manifests() -> None:
    """The check can fail: a misspelt field, a wrong type, a CRD typo and an unknown kind."""
    rendered = k8s.render(k8s.BASE)
    serve = copy.deepcopy(only(rendered, "Deployment", "paygrid-serve"))
    serve["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    hpa = copy.deepcopy(only(rendered, "HorizontalPodAutoscaler", "paygrid-serve"))
    hpa["spec"]["minReplicas"] = "three"
    monitor = copy.deepcopy(only(rendered, "ServiceMonitor", "paygrid"))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    problems = k8s.validate([serve, hpa, monitor, unknown], VERSIONS)
    messages = {p.object: p.message for p in problems}
    assert len(problems) == 4 * len(VERSIONS)
    assert "readinesProbe" in messages["Deployment/paygrid-serve"]
    assert "'three' is not of type 'integer'" in messages["HorizontalPodAutoscaler/paygrid-serve"]
    assert "intervall" in messages["ServiceMonitor/paygrid"]
    assert messages["Widget/w"].startswith("no schema")


def _backup_pod(manifests: list[Manifest]) -> dict[str, Any]:
    spec = k8s.pod_spec(only(manifests, "CronJob", k8s.BACKUP_CRONJOB))
    assert spec is not None
    return spec


def _writable_root(manifests: list[Manifest]) -> None:
    del _backup_pod(manifests)["containers"][0]["securityContext"]["readOnlyRootFilesystem"]


def _concurrent(manifests: list[Manifest]) -> None:
    only(manifests, "CronJob", k8s.BACKUP_CRONJOB)["spec"]["concurrencyPolicy"] = "Allow"


def _no_seccomp(manifests: list[Manifest]) -> None:
    del _backup_pod(manifests)["securityContext"]["seccompProfile"]


def _capabilities_kept(manifests: list[Manifest]) -> None:
    _backup_pod(manifests)["containers"][0]["securityContext"]["capabilities"] = {}


def _verifies_another_file(manifests: list[Manifest]) -> None:
    container = _backup_pod(manifests)["containers"][0]
    container["args"] = [container["args"][0].replace('verify "$f"', "verify /backups/*")]


def _through_the_pooler(manifests: list[Manifest]) -> None:
    container = _backup_pod(manifests)["containers"][0]
    container["args"] = [container["args"][0].replace(k8s.BACKUP_DIRECT_URL, "")]


def _archives_in_tmp(manifests: list[Manifest]) -> None:
    for variable in _backup_pod(manifests)["containers"][0]["env"]:
        if variable["name"] == "PAYGRID_BACKUP_DIR":
            variable["value"] = CONTAINER_TMP


def _no_claim(manifests: list[Manifest]) -> None:
    manifests.remove(only(manifests, "PersistentVolumeClaim", k8s.BACKUP_CLAIM))


def _restarts(manifests: list[Manifest]) -> None:
    _backup_pod(manifests)["restartPolicy"] = "OnFailure"


def _worker_as_root(manifests: list[Manifest]) -> None:
    worker = only(manifests, "Deployment", "paygrid-worker")
    worker["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        (_writable_root, "CronJob/paygrid-backup: container backup must have readOnlyRoot"),
        (_concurrent, "concurrencyPolicy must be Forbid"),
        (_no_seccomp, "CronJob/paygrid-backup: the pod's seccompProfile must be RuntimeDefault"),
        (_capabilities_kept, "must drop ALL capabilities"),
        (_verifies_another_file, "verify the very file `paygrid backup create` printed"),
        (_through_the_pooler, "through PAYGRID_DATABASE_DIRECT_URL, not the pooler"),
        (_archives_in_tmp, "PAYGRID_BACKUP_DIR must be where the claim paygrid-backups"),
        (_no_claim, "the PersistentVolumeClaim paygrid-backups is missing"),
        (_restarts, "restartPolicy must be Never"),
        (_worker_as_root, "Deployment/paygrid-worker: the pod must run as a non-root user"),
    ],
)
def test_each_rule_catches_what_it_is_for(
    base: list[Manifest], break_it: Callable[[list[Manifest]], None], complaint: str
) -> None:
    broken = copy.deepcopy(base)
    assert k8s.problems(broken) == []
    break_it(broken)
    found = k8s.problems(broken)
    assert any(complaint in problem for problem in found), found
    # Still valid Kubernetes: only paygrid's rules tell these apart.
    assert k8s.validate(broken, VERSIONS[:1]) == []


def test_render_fails_loudly_on_a_broken_kustomization(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(k8s.RenderError, match=r"missing\.yaml"):
        k8s.render(tmp_path)
