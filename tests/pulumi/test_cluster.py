"""What runs in the cluster, for both kubernetes sites under Pulumi's mocks: node labels, the GPU vendor's chart,
monitoring with node exporter and every receiver, the model store's credentials, the serving release's wait sized
from its models, the gateway from the hosts-mode sources, objects valid for every Kubernetes release the stack
allows; and the existing-cluster path, which creates no machine and runs no play."""

from __future__ import annotations

import json

import pytest
import yaml
from pulumi.runtime import rpc

from sovkit.config import load_stack
from sovkit.config.cluster import kubernetes_versions
from sovkit.errors import StackError
from sovkit.infra.testing import ROOT, kubernetes_manifests, run_program, stack_environment
from sovkit.render import cluster, cluster_gateway
from sovkit.serving import CHART_DIR, chart

RELEASE = "kubernetes:helm.sh/v3:Release"


def by_kind(run, kind: str) -> dict[tuple[str | None, str], dict]:
    return {(m["metadata"].get("namespace"), m["metadata"]["name"]): m for m in kubernetes_manifests(run.mocks)
            if m["kind"] == kind}


def test_nodes_labelled_as_the_chart_selects(kubernetes_stack, sovkit_values):
    site = kubernetes_stack.site
    patches = {r.plain("metadata")["name"]: r.plain("metadata")["labels"]
               for r in kubernetes_stack.run.mocks.of_type("kubernetes:core/v1:NodePatch")}
    assert set(patches) == {n.name for n in site.nodes}
    for node in site.nodes:
        assert patches[node.name][cluster.ROLE_LABEL] == node.role
        assert patches[node.name].get(cluster.ACCELERATOR_LABEL) == node.accelerator_model
    for served, model in sovkit_values(site.name)["models"].items():
        matching = [n for n, labels in patches.items() if model["nodeSelector"].items() <= labels.items()]
        assert matching, f"no node matches {served}'s nodeSelector {model['nodeSelector']}"


def test_gpu_vendor_chart_from_the_mirror_pinned(kubernetes_stack):
    site = kubernetes_stack.site
    registry = site.residency.container_registry
    device = cluster.device_chart(site)
    assert device is not None
    release = kubernetes_stack.run.mocks.named(f"{site.name}-{device.chart}")
    assert release.plain("chart") == f"oci://{registry}/charts/{device.chart}"
    assert release.plain("version") == device.version and release.plain("namespace") == device.namespace
    values = release.plain("values")
    if site.accelerator.accelerator == "nvidia":  # the host's driver; toolkit, device plugin, DCGM exporter on
        assert values["driver"]["enabled"] is False
        assert values["toolkit"]["enabled"] and values["devicePlugin"]["enabled"]
        assert values["dcgmExporter"] == {"enabled": True, "serviceMonitor": {"enabled": True},
                                          "repository": f"{registry}/nvidia/k8s"}
    else:
        assert site.accelerator.accelerator == "amd" and device.chart == "amd-gpu"
        assert values["image"]["repository"] == f"{registry}/rocm/k8s-device-plugin"


def test_monitoring_with_node_exporter_and_every_receiver(run_of):
    """za has an email and a webhook receiver and its relay: all reach Alertmanager, as in hosts mode."""
    run = run_of("za-national-dc").run
    values = run.mocks.named("za-national-dc-monitoring").plain("values")
    assert values["nodeExporter"]["enabled"] is True
    assert values["prometheus-node-exporter"]["namespaceOverride"] == cluster.NODE_EXPORTER_NAMESPACE
    receiver = values["alertmanager"]["config"]["receivers"][0]
    assert receiver["email_configs"] == [{"to": "noc@dc.gov.example", "send_resolved": True}]
    assert receiver["webhook_configs"] == [{"url": "https://alerts.dc.gov.example/hooks/sovkit", "send_resolved": True}]
    assert values["alertmanager"]["config"]["global"]["smtp_smarthost"] == "smtp.dc.gov.example:465"
    # the DCGM exporter's ServiceMonitor lives in the operator's namespace: Prometheus selects every namespace
    assert values["prometheus"]["prometheusSpec"]["serviceMonitorNamespaceSelector"] == {}


def test_model_store_credentials_in_the_secret_the_chart_reads(kubernetes_stack, sovkit_values):
    run = kubernetes_stack.run
    site = kubernetes_stack.site
    name = sovkit_values(site.name)["modelStore"]["credentialsSecret"]
    secret = run.mocks.named(f"{site.name}-model-store")
    assert secret.plain("metadata") == {"name": name, "namespace": cluster.SERVING_NAMESPACE}
    creds = site.residency.model_store_credentials
    assert secret.plain("stringData") == {
        "AWS_ACCESS_KEY_ID": run.secret_values[f"sovereign-ai:{creds.access_key_id.pulumi_secret}"],
        "AWS_SECRET_ACCESS_KEY": run.secret_values[f"sovereign-ai:{creds.secret_access_key.pulumi_secret}"]}
    data = secret.inputs["stringData"]
    assert rpc.is_rpc_secret(data) or all(rpc.is_rpc_secret(v) for v in data.values())


def test_serving_release_waits_as_long_as_its_models_take(kubernetes_stack, sovkit_values):
    values = sovkit_values(kubernetes_stack.name)
    release = kubernetes_stack.run.mocks.named(f"{kubernetes_stack.name}-serving")
    assert release.plain("timeout") == cluster.release_timeout_s(values) > 300  # Helm's default is too short
    # one model refused (its weights' fetch or signature) fails the release, not the others: nothing is rolled back
    assert not release.plain("atomic")
    others = [r for r in kubernetes_stack.run.mocks.of_type("kubernetes:helm.sh/v3:Release") if r is not release]
    assert others and all(r.plain("atomic") is True for r in others)  # the platform's charts roll back whole


@pytest.mark.parametrize(("site", "expected"), [("za-national-dc", 1852), ("id-sulsel-cloud", 706)])
def test_helm_wait_for_both_sites(site, expected, sovkit_values):
    """za: its slowest rollout is Llama 3.1 8B in FP8's four replicas, one after another, each fetched over the
    default 1 Gbit/s (463 s each); id: SeaLLM 7B's two replicas over its stated 10 Gbit/s. Both far above Helm's
    default 300 s, which rolled the first install back."""
    assert cluster.release_timeout_s(sovkit_values(site)) == expected


def test_start_budget_of_a_29_gb_model():
    """A 29 GB model over 1 Gbit/s: 232 s on the wire, twice that with the margin, 54 s to load, 300 s to start."""
    gib = 29e9 / 2**30
    assert cluster.start_budget_s(gib, 1000) == 819
    assert cluster.start_budget_s(gib, 10_000) == 401  # a faster link, a shorter wait
    assert cluster.start_budget_s(gib, 1000) > 600  # more than the chart's old 300 s Helm default twice over


def test_a_signed_models_start_budget_counts_the_verifiers_second_reading_of_its_weights():
    """The verify-model init container reads and hashes every file again before vLLM starts: 5 s a GiB more
    (a node's disk at about 200 MiB/s; bench/bench_verify_weights.py measures the hashing itself). The signed
    scenario's models get it, and a model proven by its revision alone does not."""
    gib = 29e9 / 2**30
    assert cluster.start_budget_s(gib, 1000, verified=True) == 954 == 819 + 135
    signed = yaml.safe_load((CHART_DIR / "ci" / "signed-values.yaml").read_text(encoding="utf-8"))["models"]
    unsigned = yaml.safe_load((CHART_DIR / "ci" / "multi-node-values.yaml").read_text(encoding="utf-8"))["models"]
    # Mistral NeMo 12B over 16 GPUs in both scenarios, about 22.8 GiB of weights: signed in one only.
    assert signed["mistral-nemo"]["args"] == unsigned["mistral-nemo"]["args"]
    assert "signature" in signed["mistral-nemo"] and "signature" not in unsigned["mistral-nemo"]
    assert signed["mistral-nemo"]["startupSeconds"] - unsigned["mistral-nemo"]["startupSeconds"] == 114
    assert "signature" not in signed["qwen2-5-14b"]


def test_no_leader_worker_set_controller_without_a_spanning_model(kubernetes_stack, sovkit_values):
    assert not cluster.spans_nodes(sovkit_values(kubernetes_stack.name))
    assert not [r for r in kubernetes_stack.run.mocks.of_type(RELEASE) if r.plain("name") == "lws"]


def test_leader_worker_set_controller_when_a_model_spans_nodes():
    values = yaml.safe_load((CHART_DIR / "ci" / "multi-node-values.yaml").read_text(encoding="utf-8"))
    assert cluster.spans_nodes(values)
    site = load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")
    charts = {c.chart: c for c in cluster.third_party_charts(site, values)}
    assert charts["lws"].version == cluster.LWS_CHART.version
    assert charts["lws"].values["image"]["manager"]["repository"].startswith(site.residency.container_registry + "/")


def test_gateway_is_the_hosts_mode_gateway(kubernetes_stack):
    """One source: the ConfigMap holds the role's template rendered for the cluster and the role's gateway.js."""
    site = kubernetes_stack.site
    config = by_kind(kubernetes_stack.run, "ConfigMap")[(cluster.GATEWAY_NAMESPACE, cluster_gateway.CONFIG_MAP)]
    assert config["data"]["gateway.js"] == cluster_gateway.ROUTER.read_text(encoding="utf-8")
    conf = config["data"]["sovkit-gateway.conf"]
    assert conf == cluster_gateway.server_conf(site)
    for model in site.serving.models:
        assert f"server sovkit-serving-{model}.sovkit-serving.svc.cluster.local:8000;" in conf
    assert f"listen {cluster_gateway.POD_PORT} ssl" in conf
    tenants = json.loads(kubernetes_stack.run.mocks.named(f"{site.name}-gateway-tenants")
                         .plain("stringData")["tenants.json"])
    assert tenants["models"] == {t: dict.fromkeys(sorted(s.models), True) for t, s in site.serving.tenants.items()}


def test_gateway_workload_exposure_and_endpoint(kubernetes_stack):
    site = kubernetes_stack.site
    run = kubernetes_stack.run
    key = (cluster.GATEWAY_NAMESPACE, cluster_gateway.NAME)
    pod = by_kind(run, "Deployment")[key]["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        assert container["image"] == f"{site.residency.container_registry}/nginxinc/nginx-unprivileged:1.28.0-alpine"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["runAsNonRoot"] is True
    service = by_kind(run, "Service")[key]["spec"]
    ingress = by_kind(run, "Ingress")
    if site.platform.gateway_exposure == "loadBalancer":
        assert service["type"] == "LoadBalancer"
        assert service["loadBalancerSourceRanges"] == list(site.residency.in_country_cidrs)
        assert not ingress
    else:
        assert service["type"] == "ClusterIP"
        rule = ingress[key]["spec"]
        assert rule["rules"][0]["host"] == site.platform.gateway_hostname
        assert rule["tls"] == [{"hosts": [site.platform.gateway_hostname], "secretName": cluster_gateway.TLS_SECRET}]
    assert run.outputs["endpoints"] == {"gateway": f"https://{site.platform.gateway_hostname}/v1"}


def test_every_object_valid_for_each_kubernetes_release_the_stack_allows(kubernetes_stack):
    manifests = kubernetes_manifests(kubernetes_stack.run.mocks)
    assert len(manifests) > 20
    for version in kubernetes_versions(kubernetes_stack.site):
        assert chart.validate(manifests, version) == [], version


def _existing_cluster(config: dict[str, str]) -> dict[str, str]:
    config = {k: v for k, v in config.items()  # sovkit bootstraps no RKE2: no release, no etcd snapshots of its own
              if not k.startswith(("sovereign-ai:rke2", "sovereign-ai:etcdSnapshotCredentials"))}
    return config | {"sovereign-ai:kubeconfig": json.dumps({"pulumiSecret": "ministryKubeconfig"}),
                     "sovereign-ai:ministryKubeconfig": "apiVersion: v1\nkind: Config\n# ministry-cluster-token\n"}


def test_existing_cluster_installs_only_what_runs_in_it(body_with):
    """A stack naming a kubeconfig (a Pulumi secret) gets no machine, no site play and no kubeconfig fetch: the
    provider reads the secret, and everything that runs in the cluster is there as on an RKE2 site."""
    config, secret_keys, _ = stack_environment(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")
    run = run_program("za-national-dc", body_with(), config=_existing_cluster(config),
                      secret_keys=[*secret_keys, "sovereign-ai:ministryKubeconfig"])
    types = {r.type_ for r in run.mocks.resources}
    assert not {"sovkit:infra:Nodes", "sovkit:hosts:HostConfiguration", "command:local:Command"} & types
    provider = run.mocks.of_type("pulumi:providers:kubernetes")[0]
    assert rpc.is_rpc_secret(provider.inputs["kubeconfig"])
    assert "ministry-cluster-token" in provider.plain("kubeconfig")
    assert "kubeconfig" in run.secret_outputs
    releases = {r.plain("name") for r in run.mocks.of_type(RELEASE)}
    assert releases == {"sovkit-serving", "kube-prometheus-stack", "gpu-operator"}
    assert run.outputs["endpoints"] == {"gateway": "https://ai.dc.gov.example/v1"}
    assert set(run.outputs["nodes"]) == {"cp-01", "cp-02", "cp-03", "gpu-01", "gpu-02", "store-01"}


def test_existing_cluster_refuses_an_rke2_release(tmp_path):
    """validate refuses what the program would ignore: an RKE2 release for a cluster sovkit does not bootstrap."""
    text = (ROOT / "stacks" / "Pulumi.za-national-dc.yaml").read_text(encoding="utf-8").replace(
        "  sovereign-ai:mode: kubernetes\n",
        "  sovereign-ai:mode: kubernetes\n  sovereign-ai:kubeconfig: {file: /etc/sovkit/ministry.kubeconfig}\n")
    stack = tmp_path / "Pulumi.za-national-dc.yaml"
    stack.write_text(text, encoding="utf-8")
    with pytest.raises(StackError) as err:
        load_stack(stack)
    assert {(p.key_path, p.found) for p in err.value.problems} == {
        ("sovereign-ai:rke2Version", "v1.33.5+rke2r1"), ("sovereign-ai:rke2ChecksumsSha256", "set"),
        ("sovereign-ai:etcdSnapshotCredentials", "set")}


def test_bundle_lists_the_charts_the_mirror_must_carry(kubernetes_stack, sovkit_values):
    """Every chart a release installs from the mirror is in the bundle's listing, at the version it installs."""
    from sovkit.bundle.build import third_party_charts_listing

    site = kubernetes_stack.site
    listing = third_party_charts_listing(site, sovkit_values(site.name))
    assert listing["mirror"] == f"oci://{site.residency.container_registry}/charts"
    listed = {(c["chart"], c["version"]) for c in listing["charts"]}
    installed = {(r.plain("chart").rsplit("/", 1)[1], r.plain("version"))
                 for r in kubernetes_stack.run.mocks.of_type(RELEASE) if r.plain("chart").startswith("oci://")}
    assert listed == installed


def test_rke2_sites_hand_the_etcd_snapshot_credentials_to_the_site_play_as_a_secret(run_of):
    """etcdSnapshotCredentials (Pulumi secrets here) reach the converge in its environment, secret, by field; the
    play's trigger (secret too) changes with them, so a rotated key is written to the servers."""
    from sovkit.converge import ETCD_CREDENTIALS_ENV
    from sovkit.infra.testing import FAKE_KEY_PREFIX

    for name in ("za-national-dc", "id-sulsel-cloud"):
        run = run_of(name).run
        play = run.mocks.named(f"{name}-site-play")
        assert rpc.is_rpc_secret(play.inputs["environment"]) or rpc.is_rpc_secret(
            play.inputs["environment"][ETCD_CREDENTIALS_ENV])
        assert json.loads(play.plain("environment")[ETCD_CREDENTIALS_ENV]) == {
            "accessKeyId": FAKE_KEY_PREFIX + "etcdSnapshotKeyId",
            "secretAccessKey": FAKE_KEY_PREFIX + "etcdSnapshotSecret"}
        assert "sitePlayTrigger" in run.secret_outputs
