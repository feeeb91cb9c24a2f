"""charts/sovkit-serving for every ci/ scenario and every shipped stack: helm lint --strict, helm template
for two Kubernetes versions, kubernetes-validate --strict on built-in kinds, the shape of the custom
resources, and the policies the kit promises (restricted pods, probes, pinned in-country images,
default-deny network, telemetry off, the API key only from a Secret)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.render.values import render_values
from sovkit.serving import CHART_DIR, chart
from sovkit.stacks import project_root, stack_files

SCENARIOS = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
STACKS = stack_files(project_root())
CASES = [pytest.param(p, id=f"ci-{p.name.removesuffix('-values.yaml')}") for p in SCENARIOS] + [
    pytest.param(p, id=f"stack-{p.name.removeprefix('Pulumi.').removesuffix('.yaml')}") for p in STACKS]
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
ALERTS = {"SovkitModelEndpointDown", "SovkitModelQueueGrowing", "SovkitModelKvCacheFull",
          "SovkitModelTimeToFirstTokenHigh", "SovkitModelErrorRate"}


def values_of(case: Path) -> dict:
    if case.parent.name == "ci":
        return yaml.safe_load(case.read_text(encoding="utf-8"))
    return render_values(load_stack(case))


@pytest.fixture(scope="module")
def rendered(helm: str) -> dict[tuple[str, str], tuple[dict, list[dict]]]:
    """(case, kube version) -> (values, objects), rendered once for the module."""
    out = {}
    for param in CASES:
        case = param.values[0]
        values = values_of(case)
        for version in chart.KUBE_VERSIONS:
            out[(case.name, version)] = (values, chart.template(values, version))
    return out


def pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] == "Deployment":
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "LeaderWorkerSet":
        lwt = obj["spec"]["leaderWorkerTemplate"]
        return [lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]]
    return []


@pytest.mark.parametrize("case", CASES)
def test_lint_strict(helm, case):
    values = values_of(case)
    assert "0 chart(s) failed" in chart.lint(values)


@pytest.mark.parametrize("version", chart.KUBE_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_built_in_kinds_validate_strictly(rendered, case, version):
    values, objects = rendered[(case.name, version)]
    assert chart.validate(objects, version) == []
    kinds = [o["kind"] for o in objects]
    for name, model in values["models"].items():
        workload = "LeaderWorkerSet" if model["nodesPerReplica"] > 1 else "Deployment"
        assert any(o["kind"] == workload and o["metadata"]["labels"]["sovkit.io/model"] == name for o in objects)
    assert kinds.count("Service") == len(values["models"])


@pytest.mark.parametrize("case", CASES)
def test_restricted_pods_probes_images_and_secrets(rendered, case):
    values, objects = rendered[(case.name, chart.KUBE_VERSIONS[-1])]
    registry = values["imageRegistry"]
    pods = [(obj["metadata"]["labels"]["sovkit.io/model"], spec) for obj in objects for spec in pod_specs(obj)]
    assert pods
    for served, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        for volume in spec["volumes"]:
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
        for container in spec.get("initContainers", []) + spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert not sc.get("privileged")
            image = container["image"]
            assert image.startswith(registry + "/"), f"{image} is not from {registry}"
            tag = image.rsplit(":", 1)[1]
            assert tag and tag != "latest" and "/" not in tag
        vllm = [c for c in spec["containers"] if c["name"] == "vllm"]
        for c in vllm:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["path"] == "/health", probe
            # the model's own start budget (its weights over the stated link) where sovkit gives one, else 30 min
            model = values["models"][served]
            allowed = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
            assert allowed >= model.get("startupSeconds", 1800)
            assert allowed < model.get("startupSeconds", 1800) + c["startupProbe"]["periodSeconds"]
            env = {e["name"]: e for e in c["env"]}
            for name in ("VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", "HF_HUB_OFFLINE"):
                assert env[name]["value"] == "1"
            assert "secretKeyRef" in env["VLLM_API_KEY"]["valueFrom"]
            assert "--api-key" not in json.dumps(c.get("args", []))


@pytest.mark.parametrize("case", CASES)
def test_resources_match_the_accelerator(rendered, case):
    values, objects = rendered[(case.name, chart.KUBE_VERSIONS[-1])]
    resource = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}.get(values["accelerator"])
    for obj in objects:
        for spec in pod_specs(obj):
            name = obj["metadata"]["labels"]["sovkit.io/model"]
            limits = spec["containers"][0]["resources"]["limits"]
            if resource:
                assert limits[resource] == values["models"][name]["gpusPerNode"] >= 1
            else:
                assert not any(k.endswith("/gpu") for k in limits) and "memory" in limits


@pytest.mark.parametrize("case", CASES)
def test_network_policy_denies_by_default(rendered, case):
    values, objects = rendered[(case.name, chart.KUBE_VERSIONS[-1])]
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    deny = policies["sovkit-sovkit-serving-default-deny"]
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    allow = policies["sovkit-sovkit-serving-allow"]
    [ingress] = allow["ingress"]
    assert [p["port"] for p in ingress["ports"]] == [8000]
    assert len(ingress["from"]) == 2  # the gateway and Prometheus, nobody else
    egress_ports = {p["port"] for rule in allow["egress"] for p in rule["ports"]}
    assert egress_ports <= {53, *values["modelStore"]["ports"]}
    cidrs = {peer["ipBlock"]["cidr"] for rule in allow["egress"] for peer in rule["to"] if "ipBlock" in peer}
    assert cidrs <= set(values["modelStore"]["cidrs"])
    assert "0.0.0.0/0" not in cidrs


@pytest.mark.parametrize("case", CASES)
def test_monitoring_objects(rendered, case):
    values, objects = rendered[(case.name, chart.KUBE_VERSIONS[-1])]
    by_kind: dict[str, list[dict]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    [monitor] = by_kind["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == chart.RELEASE
    [rule] = by_kind["PrometheusRule"]
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) >= ALERTS
    for alert in alerts.values():
        assert alert["expr"].strip() and alert["labels"]["severity"] in {"warning", "critical"}
        assert "{{ $labels" in alert["annotations"]["summary"]
    dashboards = [o for o in by_kind["ConfigMap"] if o["metadata"]["name"].endswith("-dashboard")]
    dashboard = json.loads(dashboards[0]["data"]["sovkit-serving.json"])
    assert dashboard["uid"] == "sovkit-serving" and len(dashboard["panels"]) >= 6
    assert {"vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
            "vllm:time_to_first_token_seconds_bucket"} <= chart.metric_names(objects)
    for pdb in by_kind.get("PodDisruptionBudget", []):
        assert values["models"][pdb["metadata"]["labels"]["sovkit.io/model"]]["replicas"] > 1


def test_leader_worker_set_shape(rendered):
    values, objects = rendered[("multi-node-values.yaml", chart.KUBE_VERSIONS[-1])]
    [lws] = [o for o in objects if o["kind"] == "LeaderWorkerSet"]
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    model = values["models"][lws["metadata"]["labels"]["sovkit.io/model"]]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == model["nodesPerReplica"] == 2
    assert lws["spec"]["replicas"] == model["replicas"]
    leader, worker = template["leaderTemplate"], template["workerTemplate"]
    assert leader["metadata"]["labels"]["sovkit.io/role"] == "leader"
    assert "--pipeline-parallel-size" in leader["spec"]["containers"][0]["args"][0]
    assert "LWS_LEADER_ADDRESS" in worker["spec"]["containers"][0]["args"][0]
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["spec"]["selector"]["sovkit.io/role"] == "leader"
    # the group's pods may reach each other (Ray, NCCL) and only each other
    group = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-group"))
    assert group["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]["sovkit.io/model"] == "mistral-nemo"


def test_schema_refuses_an_unpinned_image(helm):
    values = yaml.safe_load((CHART_DIR / "ci" / "cpu-values.yaml").read_text())
    values["images"] = {"vllm": {"cpu": {"repository": "vllm/vllm-openai-cpu", "tag": "latest"}}}
    with pytest.raises(chart.HelmError, match="tag"):
        chart.template(values)


def test_schema_refuses_telemetry_on(helm):
    values = yaml.safe_load((CHART_DIR / "ci" / "cpu-values.yaml").read_text())
    next(iter(values["models"].values()))["env"]["VLLM_NO_USAGE_STATS"] = "0"
    with pytest.raises(chart.HelmError, match="VLLM_NO_USAGE_STATS"):
        chart.template(values)


def test_a_path_source_needs_a_claim(helm):
    values = yaml.safe_load((CHART_DIR / "ci" / "cpu-values.yaml").read_text())
    next(iter(values["models"].values()))["source"] = "/srv/models/x"
    with pytest.raises(chart.HelmError, match="existingClaim"):
        chart.template(values)


def test_no_values_renders_nothing_but_the_network_policy(helm):
    objects = chart.template({})
    assert {o["kind"] for o in objects} <= {"NetworkPolicy", "ConfigMap"}


@pytest.mark.parametrize("case", CASES)
def test_pods_run_exactly_the_rendered_vllm_arguments(rendered, case):
    values, objects = rendered[(case.name, chart.KUBE_VERSIONS[-1])]
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        model = values["models"][obj["metadata"]["labels"]["sovkit.io/model"]]
        [vllm] = obj["spec"]["template"]["spec"]["containers"]
        assert vllm["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
        assert vllm["args"] == model["args"]
        assert obj["spec"]["replicas"] == model["replicas"]


@pytest.mark.parametrize("version", chart.KUBE_VERSIONS)
def test_queue_depth_autoscaler(helm, version):
    values = yaml.safe_load((CHART_DIR / "ci" / "two-models-values.yaml").read_text())
    values["autoscaling"] = {"enabled": True, "maxReplicas": 3}
    objects = chart.template(values, version)
    assert chart.validate(objects, version) == []
    hpas = {o["metadata"]["labels"]["sovkit.io/model"]: o["spec"] for o in objects
            if o["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == set(values["models"])
    for name, spec in hpas.items():
        assert spec["minReplicas"] == values["models"][name]["replicas"]
        assert spec["maxReplicas"] == 3
        assert spec["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"


def init_containers(obj: dict) -> list[list[dict]]:
    return [spec.get("initContainers", []) for spec in pod_specs(obj)]


def test_signed_models_are_verified_after_the_fetch_in_both_workloads(rendered):
    """A signed model's pods (Deployment, and a LeaderWorkerSet's leader and workers alike) run verify-model after
    fetch-model, on the fetched folder, with the fetched signature and the signer from the chart's ConfigMap; a
    model proven by its revision alone gets no verifier."""
    values, objects = rendered[("signed-values.yaml", chart.KUBE_VERSIONS[-1])]
    registry = values["imageRegistry"]
    signed = {name for name, m in values["models"].items() if m.get("signature")}
    assert signed == {"mistral-nemo", "llama-3-1-8b"} and set(values["models"]) - signed == {"qwen2-5-14b"}
    kinds = set()
    for obj in objects:
        if obj["kind"] not in ("Deployment", "LeaderWorkerSet"):
            continue
        name = obj["metadata"]["labels"]["sovkit.io/model"]
        model = values["models"][name]
        kinds.add((obj["kind"], name in signed))
        for spec, containers in zip(pod_specs(obj), init_containers(obj), strict=True):
            names = [c["name"] for c in containers]
            if name not in signed:
                assert names == ["fetch-model"], name
                assert "signers" not in {v["name"] for v in spec["volumes"]}
                continue
            assert names == ["fetch-model", "verify-model"], name
            fetch, verify = containers
            assert {e["name"]: e.get("value") for e in fetch["env"]}["MODEL_SIGNATURE"] == model["signature"]
            assert verify["image"] == f"{registry}/sovkit/model-verifier:{values_images()['verifier']['tag']}"
            assert verify["args"] == [f"/models/{name}", "--signature", f"/models/{name}.sig",
                                      "--signer", f"/signers/{name}.pem"]
            mounts = {m["name"]: m for m in verify["volumeMounts"]}
            assert mounts["models"]["readOnly"] is True and mounts["signers"]["readOnly"] is True
            assert verify["resources"]["limits"]["memory"] and verify["resources"]["requests"]["cpu"]
            [volume] = [v for v in spec["volumes"] if v["name"] == "signers"]
            assert volume["configMap"]["items"] == [{"key": f"{name}.pem", "path": f"{name}.pem"}]
    assert kinds == {("Deployment", True), ("Deployment", False), ("LeaderWorkerSet", True)}
    [signers] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-signers")]
    assert signers["data"] == {f"{n}.pem": values["models"][n]["signer"].strip() + "\n" for n in signed}
    assert all("PRIVATE" not in pem for pem in signers["data"].values())


def values_images() -> dict:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))["images"]


def test_no_signed_model_no_verifier_and_no_signers(rendered):
    for case in SCENARIOS:
        if case.name == "signed-values.yaml":
            continue
        _, objects = rendered[(case.name, chart.KUBE_VERSIONS[-1])]
        assert not [o for o in objects if o["metadata"]["name"].endswith("-signers")], case.name
        for obj in objects:
            for containers in init_containers(obj):
                assert [c["name"] for c in containers] == ["fetch-model"], case.name


@pytest.mark.parametrize("version", chart.KUBE_VERSIONS)
def test_a_signed_model_on_a_claim_is_verified_from_the_claim(helm, version):
    """A path store is mounted as the claim: nothing is fetched, and verify-model reads the signature in it."""
    values = yaml.safe_load((CHART_DIR / "ci" / "signed-values.yaml").read_text())
    values["modelStore"]["existingClaim"] = "sovkit-models"
    for name, model in values["models"].items():
        model["source"] = f"/srv/sovkit/models/{name}"
        if model.get("signature"):
            model["signature"] = f"/models/{name}/model.sig"
    objects = chart.template(values, version)
    assert chart.validate(objects, version) == []
    for obj in objects:
        if obj["kind"] not in ("Deployment", "LeaderWorkerSet"):
            continue
        name = obj["metadata"]["labels"]["sovkit.io/model"]
        for containers in init_containers(obj):
            if not values["models"][name].get("signature"):
                assert containers == []
                continue
            [verify] = containers
            assert verify["name"] == "verify-model"
            assert verify["args"][:3] == [f"/models/{name}", "--signature", f"/models/{name}/model.sig"]


def test_schema_refuses_a_signature_without_a_signer_and_a_private_key_as_signer(helm):
    values = yaml.safe_load((CHART_DIR / "ci" / "signed-values.yaml").read_text())
    model = values["models"]["llama-3-1-8b"]
    pem = model.pop("signer")
    with pytest.raises(chart.HelmError, match="signer"):
        chart.template(values)
    model["signer"] = pem.replace("PUBLIC KEY", "PRIVATE KEY")
    with pytest.raises(chart.HelmError, match="signer"):
        chart.template(values)
