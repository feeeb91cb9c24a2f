"""Everything a kubernetes site puts in the cluster, judged from outside: the serving chart as `helm template`
renders it with the site's values and the objects the Pulumi program creates, validated against the Kubernetes
schemas of every release the stack allows, held to the kit's policies (restricted pods, images only from the
in-country registry, no host path), and scanned by checkov offline. A finding is fixed, or waived in the code
that makes the object with a `checkov.io/skipN: CHECK=reason` annotation; none is waived here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from sovkit.config.cluster import kubernetes_versions
from sovkit.infra.testing import ROOT, kubernetes_manifests
from sovkit.serving import chart

WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "LeaderWorkerSet"}


def rendered(stack) -> list[dict]:
    """The site's objects: the serving chart's (as the release installs it) and the program's own."""
    values = stack.run.mocks.named(f"{stack.name}-serving").plain("values")
    return chart.template(values, chart.KUBE_VERSIONS[-1]) + kubernetes_manifests(stack.run.mocks)


def pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] == "LeaderWorkerSet":
        lwt = obj["spec"]["leaderWorkerTemplate"]
        return [lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]]
    if obj["kind"] in WORKLOADS:
        return [obj["spec"]["template"]["spec"]]
    return []


def test_valid_for_every_kubernetes_release_the_stack_allows(kubernetes_stack):
    values = kubernetes_stack.run.mocks.named(f"{kubernetes_stack.name}-serving").plain("values")
    for version in kubernetes_versions(kubernetes_stack.site):
        objects = chart.template(values, f"{version}.0") + kubernetes_manifests(kubernetes_stack.run.mocks)
        assert chart.validate(objects, version) == [], version


def test_restricted_pods_in_country_images_no_host_paths(kubernetes_stack):
    """Every pod the kit makes meets the restricted Pod Security Standard, pulls only from containerRegistry, and
    mounts no host path (the model cache is an emptyDir or the store's claim, never the node's disk)."""
    registry = kubernetes_stack.site.residency.container_registry
    pods = [(obj["metadata"]["name"], spec) for obj in rendered(kubernetes_stack) for spec in pod_specs(obj)]
    assert len(pods) == len(kubernetes_stack.site.serving.models) + 1  # each model's, and the gateway's
    for name, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & {k for k, v in spec.items() if v}, name
        assert not [v for v in spec["volumes"] if "hostPath" in v], name
        for container in spec.get("initContainers", []) + spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, name
            assert sc["runAsNonRoot"] is True and sc["capabilities"] == {"drop": ["ALL"]}, name
            assert container["image"].startswith(registry + "/"), container["image"]
            assert ":" in container["image"].rsplit("/", 1)[1] and not container["image"].endswith(":latest")


@pytest.fixture(scope="session")
def checkov() -> str:
    run = subprocess.run(["bash", str(ROOT / "scripts" / "checkov-env.sh")], capture_output=True, text=True,
                         check=False, timeout=1800)
    if run.returncode != 0:
        pytest.fail(f"scripts/checkov-env.sh could not make the scanner's venv: {run.stderr[-2000:]}")
    return run.stdout.strip().splitlines()[-1]


def scan(checkov: str, objects: list[dict], folder: Path, name: str) -> dict[str, int]:
    """checkov over the objects: nothing failed, every waiver with its reason; returns the summary."""
    (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(objects), encoding="utf-8")
    run = subprocess.run([checkov, "-d", str(folder), "--framework", "kubernetes", "--skip-download",
                          "--output", "json"], capture_output=True, text=True, check=False, timeout=900)
    reports = json.loads(run.stdout) if run.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    assert reports, run.stderr[-2000:]
    failed = [(f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]]
    assert failed == []
    skipped = [f for r in reports for f in r["results"]["skipped_checks"]]
    assert skipped, "the waivers written in the chart and the gateway are seen by the scanner"
    for finding in skipped:  # every waiver names its reason
        assert len(finding["check_result"].get("suppress_comment", "")) > 40, finding["check_id"]
    summary = {k: sum(r["summary"][k] for r in reports) for k in ("passed", "failed", "skipped")}
    Path(folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return summary


def test_checkov_finds_nothing_unwaived(kubernetes_stack, checkov, tmp_path):
    summary = scan(checkov, rendered(kubernetes_stack), tmp_path, kubernetes_stack.name)
    assert summary["passed"] > 100


def test_checkov_finds_nothing_unwaived_in_signed_models_pods(checkov, tmp_path):
    """No shipped kubernetes stack signs a model: the signed scenario's pods (verify-model in a Deployment and in a
    LeaderWorkerSet's leader and workers, the signers ConfigMap) are scanned the same way."""
    values = yaml.safe_load((chart.CHART_DIR / "ci" / "signed-values.yaml").read_text(encoding="utf-8"))
    objects = chart.template(values, chart.KUBE_VERSIONS[-1])
    assert any(c["name"] == "verify-model" for o in objects for spec in pod_specs(o)
               for c in spec.get("initContainers", []))
    summary = scan(checkov, objects, tmp_path, "signed")
    assert summary["passed"] > 100
