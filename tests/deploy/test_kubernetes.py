"""The Kubernetes manifests (deploy/kubernetes): what they render to, object by object.

Rendered with ``kubectl kustomize`` and validated by tests/deploy/kubernetes_manifests.py
(also run by ``make lint``); never applied to a cluster here.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Iterator
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
WORKLOADS = {"Deployment", "Job"}
CONTAINER_TMP = "/tmp"  # noqa: S108 (a path inside the pods, where an emptyDir is mounted)


@pytest.fixture(scope="module", params=["base", "production"])
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    kustomization = k8s.BASE if request.param == "base" else k8s.PRODUCTION
    return k8s.render(kustomization)


def only(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for manifest in manifests:
        if manifest["kind"] in WORKLOADS:
            yield k8s.name_of(manifest), manifest["spec"]["template"]["spec"]


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
    } <= kinds
    assert k8s.validate(rendered, VERSIONS) == []


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
    assert seen == 3  # serve, worker, migrate


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


def test_render_fails_loudly_on_a_broken_kustomization(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(k8s.RenderError, match=r"missing\.yaml"):
        k8s.render(tmp_path)
