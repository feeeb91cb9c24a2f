"""The role variables sovkit renders: each is the stack's value (or derived from it here, once), per host where it
differs by host, and each input a role checks is named with its check and stack key."""

import fnmatch
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.config.checks import CHECKS
from sovkit.config.loader import build_site
from sovkit.config.rke2 import runs_rke2
from sovkit.render import role_vars
from sovkit.render.inventory import render_inventory
from sovkit.stacks import stack_files

ROOT = Path(__file__).resolve().parents[3]
STACKS = {p.name: load_stack(p) for p in stack_files(ROOT)}


def site(name: str):
    return STACKS[f"Pulumi.{name}.yaml"]


def rules_of(inventory: dict, host: str) -> dict[str, dict]:
    hosts = {h: v for g in inventory["all"]["children"].values() for h, v in g["hosts"].items() if v}
    return {r["name"]: r for r in hosts[host]["residency_network_inbound"]}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_residency_inputs_are_the_stacks_values(stack: str):
    s = STACKS[stack]
    v = role_vars.site_vars(s)
    res = s.residency
    assert v["residency_network_in_country_cidrs"] == v["residency_time_dns_in_country_cidrs"] == res.in_country_cidrs
    assert v["residency_network_ntp_servers"] == v["residency_time_dns_ntp_servers"] == res.ntp_servers
    assert v["residency_network_dns_resolvers"] == v["residency_time_dns_resolvers"] == res.dns_resolvers
    assert v["residency_network_admin_cidrs"] == res.admin_cidrs
    assert v["audit_logging_retention_days"] == s.log_retention_days
    assert v["data_at_rest_required"] == res.encryption_at_rest_required


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_every_checked_input_is_rendered_with_its_arguments(stack: str):
    """A role's checks read variables the inventory holds (hosts-mode roles only on hosts-mode sites, rke2 only on
    RKE2 sites)."""
    variables = role_vars.site_vars(STACKS[stack])
    for pre in role_vars.PRECONDITIONS:
        assert pre.check in CHECKS
        if pre.role in ("gateway", "model_store") and STACKS[stack].platform.mode != "hosts":
            continue
        if pre.role == "rke2" and not runs_rke2(STACKS[stack]):  # an RKE2 site's (kubernetes, no kubeconfig)
            continue
        assert pre.variable in variables, pre
        assert all(arg in variables for arg in pre.args.values()), pre


def test_apt_sources_carry_the_vendors_components_and_the_security_archive():
    pune = role_vars.apt(site("in-mh-pune"))["os_baseline_apt_sources"]
    assert [s["uris"] for s in pune] == ["http://mirror.mh.gov.example/debian",
                                         "http://mirror.mh.gov.example/debian-security",
                                         "http://mirror.mh.gov.example/nvidia-cuda/debian12/x86_64"]
    assert pune[2]["suites"] == ["/"] and pune[2]["signed_by"] == "/etc/apt/keyrings/sovkit-nvidia.asc"
    assert pune[0]["suites"] == ["bookworm", "bookworm-updates"] and pune[1]["suites"] == ["bookworm-security"]
    assert pune[0]["components"] == ["main", "contrib", "non-free", "non-free-firmware"]  # the NVIDIA driver's
    assert pune[0]["signed_by"] == role_vars.DEBIAN_KEYRING
    brazil = role_vars.apt(site("br-ministerio-cpu"))["os_baseline_apt_sources"]
    assert brazil[0]["components"] == ["main"]
    local = role_vars.apt(site("local"))["os_baseline_apt_sources"]
    assert local == [{"uris": "file:///srv/sovkit/bundle/apt", "suites": ["./"], "trusted": True}]


def _edited(name: str, **changes: object):
    import yaml

    config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())["config"]
    config.update({f"sovereign-ai:{k}": v for k, v in changes.items()})
    return build_site(config, f"edited {name}", None)


def test_a_re_signing_mirror_vendor_repositories_and_in_country_cas_are_installed_with_their_keys():
    s = _edited("in-mh-pune", aptMirrorKey="/etc/sovkit/keys/mirror.gpg",
                trustedCaFiles=["/etc/sovkit/pki/national-root.pem"],
                aptRepositories={"nvidia": {"url": "http://mirror.mh.gov.example/nvidia/cuda/debian12/x86_64",
                                            "signingKey": "/etc/sovkit/keys/cuda.asc"}})
    apt = role_vars.apt(s)
    assert apt["os_baseline_apt_keys"] == [
        {"src": "/etc/sovkit/keys/mirror.gpg", "dest": "/etc/apt/keyrings/sovkit-mirror.gpg"},
        {"src": "/etc/sovkit/keys/cuda.asc", "dest": "/etc/apt/keyrings/sovkit-nvidia.asc"}]
    sources = apt["os_baseline_apt_sources"]
    assert sources[0]["signed_by"] == sources[1]["signed_by"] == "/etc/apt/keyrings/sovkit-mirror.gpg"
    assert sources[2] == {"uris": "http://mirror.mh.gov.example/nvidia/cuda/debian12/x86_64", "suites": ["/"],
                          "signed_by": "/etc/apt/keyrings/sovkit-nvidia.asc"}
    assert apt["os_baseline_ca_certificates"] == [
        {"src": "/etc/sovkit/pki/national-root.pem", "dest": "/usr/local/share/ca-certificates/sovkit-1.crt"}]


def test_kubernetes_nodes_admit_exactly_what_the_cluster_needs():
    za = site("za-national-dc")
    inventory = render_inventory(za)
    nodes = sorted(f"{n.address}/32" for n in za.nodes)
    planes = sorted(f"{n.address}/32" for n in za.nodes_with_role("control_plane"))
    cp, gpu = rules_of(inventory, "cp-01"), rules_of(inventory, "gpu-01")
    assert set(cp) == {"ingress (OpenAI-compatible API)", "Kubernetes API", "RKE2 supervisor",
                       "etcd, between control planes", "kubelet", "Canal VXLAN overlay", "node exporter"}
    assert set(gpu) == {"ingress (OpenAI-compatible API)", "kubelet", "Canal VXLAN overlay", "node exporter"}
    assert cp["etcd, between control planes"]["from"]["v4"] == planes
    assert cp["etcd, between control planes"]["ports"] == "2379-2380"
    assert cp["RKE2 supervisor"]["from"]["v4"] == nodes
    assert cp["Kubernetes API"]["from"]["v4"] == sorted({*nodes, *za.residency.admin_cidrs})
    assert gpu["Canal VXLAN overlay"] == {"name": "Canal VXLAN overlay", "proto": "udp", "ports": "8472",
                                          "from": {"v4": nodes, "v6": []}}
    variables = inventory["all"]["vars"]
    assert variables["residency_network_internal_cidrs"] == [za.platform.cluster_cidr, za.platform.service_cidr]


def test_hosts_mode_serves_the_gateway_prometheus_to_admins_and_node_exporter_to_prometheus():
    br = site("br-ministerio-cpu")
    inventory = render_inventory(br)
    first, second = rules_of(inventory, "bsb-cpu-01"), rules_of(inventory, "bsb-cpu-02")
    assert first["Prometheus, for the operators"]["from"] == {"v4": ["192.0.2.0/28"], "v6": ["2001:db8:55:1::/64"]}
    assert "Prometheus, for the operators" not in second
    assert second["node exporter, scraped by Prometheus"]["from"]["v4"] == ["192.0.2.21/32"]
    assert first["gateway (OpenAI-compatible API)"]["from"] == {"v4": ["192.0.2.0/24"], "v6": ["2001:db8:55::/48"]}


def test_openstack_servers_may_reach_the_metadata_service_and_nothing_else_by_exception():
    endpoints = role_vars.site_vars(site("id-sulsel-cloud"))["residency_network_allowed_endpoints"]
    assert endpoints == [role_vars.METADATA_SERVICE]
    assert role_vars.site_vars(site("za-national-dc"))["residency_network_allowed_endpoints"] == [
        {"host": "192.0.2.80", "port": 80, "justification": site("za-national-dc").residency.allowed_endpoints[
            "192.0.2.80:80"]}]


@pytest.mark.parametrize("stack", sorted(n for n, s in STACKS.items() if s.platform.mode == "hosts"))
def test_prometheus_scrapes_each_model_once_on_every_serving_node(stack: str):
    """One scrape job per model (Prometheus refuses a job name twice), its targets every serving node's gateway."""
    site = STACKS[stack]
    inventory = render_inventory(site)
    first = site.serving_nodes()[0].name
    host = next(g["hosts"][first] for g in inventory["all"]["children"].values() if g["hosts"].get(first))
    jobs = host["monitoring_model_targets"]
    assert [j["served_model"] for j in jobs] == list(site.serving.models)
    gateways = [f"{n.address}:443" for n in site.serving_nodes()]
    assert all(j["targets"] == gateways for j in jobs)


def _gpu_hosts_sites() -> dict:
    """Every shipped hosts-mode GPU site, and an AMD one made from in-mh-pune (four MI300X, two models). Validate
    refuses that one until an AMD runtime lock ships; the placement its hosts would be given renders all the same."""
    import dataclasses

    from sovkit.config.schema import AcceleratorSection

    sites = {n: s for n, s in STACKS.items() if s.platform.mode == "hosts" and s.accelerator.accelerator != "cpu"}
    pune = STACKS["Pulumi.in-mh-pune.yaml"]
    host = pune.infrastructure.hosts["pune-ai-01"]
    mi300x = host.model_copy(update={"accelerator": host.accelerator.model_copy(update={"model": "MI300X-192GB"})})
    models = {n: m.model_copy(update={"quantization": "none"}) for n, m in pune.serving.models.items()}
    sites["amd variant of in-mh-pune"] = dataclasses.replace(
        pune, accelerator=AcceleratorSection(accelerator="amd", accelerator_driver_version="6.12.12"),
        infrastructure=pune.infrastructure.model_copy(update={"hosts": {"pune-ai-01": mi300x}}),
        serving=pune.serving.model_copy(update={"models": models}))
    return sites


@pytest.mark.parametrize(("name", "site"), sorted(_gpu_hosts_sites().items()))
def test_each_model_gets_its_own_gpus_on_every_serving_node(name: str, site):
    """The planner's placement reaches each model server: disjoint GPUs, exactly as many as its tensor parallelism,
    named to vLLM by the vendor's variable and opened to its unit alone (DeviceAllow)."""
    from sovkit.config.planner import plan_site
    from sovkit.config.vendors import vendor

    gpus = vendor(site.accelerator.accelerator)
    plans = {p.served_name: p for p in plan_site(site)}
    inventory = render_inventory(site)
    for node in site.serving_nodes():
        host = next(g["hosts"][node.name] for g in inventory["all"]["children"].values() if g["hosts"].get(node.name))
        devices = host["vllm_service_devices"]
        assert sorted(devices) == sorted(site.serving.models), name
        taken: list[int] = []
        for served, given in devices.items():
            indices = [int(i) for i in given["env"][gpus.device_env].split(",")]
            assert len(indices) == plans[served].tensor_parallel
            assert all(0 <= i < node.accelerator_count for i in indices)
            assert given["allow"] == gpus.device_nodes(tuple(indices))
            taken += indices
        assert len(taken) == len(set(taken)), f"{name}: two models share a GPU on {node.name}: {devices}"


def test_a_cpu_site_names_no_device():
    for site in STACKS.values():
        if site.accelerator.accelerator == "cpu" and site.platform.mode == "hosts":
            hosts = render_inventory(site)["all"]["children"]
            assert all(not v.get("vllm_service_devices") for g in hosts.values() for v in g["hosts"].values() if v)


@pytest.mark.parametrize("stack", sorted(n for n, s in STACKS.items() if s.platform.mode == "hosts"))
def test_the_rendered_model_servers_pass_the_roles_launch_check(stack: str):
    launches = render_inventory(STACKS[stack])["all"]["vars"]["vllm_service_models"]
    assert launches and CHECKS["model_launches"](launches) == []


@pytest.mark.parametrize(("host", "found"), [("0.0.0.0", "--host 0.0.0.0"), ("::", "--host ::"),
                                             ("203.0.113.40", "--host 203.0.113.40"), (None, "no --host")])
def test_a_model_server_beyond_loopback_or_on_a_taken_port_is_refused(host, found):
    args = ["--model", "/m"] + (["--host", host] if host else [])
    launches = {"a": {"port": 8000, "args": ["--host", "::1"]}, "b": {"port": 8000, "args": args}}
    findings = CHECKS["model_launches"](launches)
    assert [(f.at, f.found) for f in findings] == [(".b.port", "8000"), (".b.args", found)]
    assert CHECKS["model_launches"]({}) and CHECKS["model_launches"](None)


def test_gpu_hosts_run_the_gpu_exporter_and_only_prometheus_may_scrape_it():
    """Hosts mode has no DCGM: each GPU serving host runs sovkit's NVML exporter from the runtime's venv, opening
    every GPU of the host; Prometheus scrapes it, and the firewall admits that scrape from Prometheus alone."""
    from sovkit.config.vendors import vendor

    pune = site("in-mh-pune")
    inventory = render_inventory(pune)
    [node] = pune.serving_nodes()
    host = next(g["hosts"][node.name] for g in inventory["all"]["children"].values() if g["hosts"].get(node.name))
    assert host["monitoring_gpu_exporter_enabled"] is True
    assert Path(host["monitoring_gpu_exporter_src"]) == ROOT / "sovkit" / "gpu_exporter.py"
    assert host["monitoring_gpu_exporter_python"] == f"{inventory['all']['vars']['vllm_service_venv']}/bin/python"
    assert host["monitoring_gpu_exporter_devices"] == vendor("nvidia").device_nodes((0, 1, 2, 3))
    assert host["monitoring_gpu_targets"] == [f"{node.address}:9400"]
    assert rules_of(inventory, node.name)["GPU exporter, scraped by Prometheus"] == {
        "name": "GPU exporter, scraped by Prometheus", "proto": "tcp", "ports": "9400",
        "from": {"v4": [f"{node.address}/32"], "v6": []}}


@pytest.mark.parametrize("stack", sorted(n for n, s in STACKS.items()
                                         if s.platform.mode == "hosts" and s.accelerator.accelerator == "cpu"))
def test_a_cpu_site_runs_no_gpu_exporter_and_opens_no_port_for_one(stack: str):
    inventory = render_inventory(STACKS[stack])
    hosts = [v for g in inventory["all"]["children"].values() for v in g["hosts"].values() if v]
    assert all(v["monitoring_gpu_exporter_enabled"] is False for v in hosts)
    assert all(not v.get("monitoring_gpu_targets") for v in hosts)
    assert all(r["ports"] != "9400" for v in hosts for r in v["residency_network_inbound"])


def test_the_signatures_folder_holds_exactly_each_signed_models_signature_and_signer():
    """The model store role removes anything else there (a model out of the stack, or no longer signed)."""
    variables = render_inventory(STACKS["Pulumi.local.yaml"])["all"]["vars"]
    models, folder = variables["model_store_models"], variables["model_store_signatures_dir"]
    signed = [name for name, model in models.items() if "signature" in model]
    assert signed  # the local stack signs its models
    assert variables["model_store_signature_files"] == sorted(
        f"{folder}/{name}.{kind}" for name in signed for kind in ("pem", "sig"))



VLLM_SERVICE = ROOT / "roles" / "vllm_service"
# The role's templates (by src) and folders, written once per model by units.yml, and the rendered list of each.
WRITTEN_PER_MODEL = {"etc/systemd/system/sovkit-vllm@.service.j2": "vllm_service_unit_files",
                     "etc/sovkit/vllm/model.env.j2": "vllm_service_env_files",
                     "etc/systemd/system/sovkit-verify-weights@.service.j2": "vllm_service_verification_unit_files",
                     "directory": "vllm_service_model_dirs"}


def templated(variables: dict, value: object, **extra: object) -> object:
    """`value` from a task of the vllm_service role, templated as Ansible does with the role's defaults under
    `variables`."""
    from ansible.template import Templar, trust_as_template

    merged = {**yaml.safe_load((VLLM_SERVICE / "defaults" / "main.yml").read_text()), **variables, **extra}
    return Templar(variables=merged).template(trust_as_template(value) if isinstance(value, str) else value)


def tasks_of(name: str) -> list[dict]:
    return yaml.safe_load((VLLM_SERVICE / "tasks" / name).read_text())


def written_per_model(variables: dict) -> dict[str, list[str]]:
    """What units.yml writes for each model (a template by its src, or a folder), its loops and paths templated."""
    out: dict[str, list[str]] = {}
    for task in tasks_of("units.yml"):
        module = task.get("ansible.builtin.template") or task.get("ansible.builtin.file")
        if not module or "loop" not in task or module.get("state", "directory") != "directory":
            continue
        out[module.get("src", "directory")] = sorted(
            templated(variables, module.get("dest") or module["path"], item=item)
            for item in templated(variables, task["loop"]))
    return out


@pytest.mark.parametrize("stack", sorted(n for n, s in STACKS.items() if s.platform.mode == "hosts"))
def test_the_model_servers_files_kept_are_those_the_role_writes(stack: str):
    """retire_stale.yml removes every model server's unit, environment, working folder and weights verification
    that these lists do not name: they are exactly what units.yml writes, for each model (each signed one's
    verification), and what retire_stale.yml looks for on the host finds each of them."""
    variables = render_inventory(STACKS[stack])["all"]["vars"]
    models = variables["vllm_service_models"]
    assert written_per_model(variables) == {kind: variables[name] for kind, name in WRITTEN_PER_MODEL.items()}
    assert len(variables["vllm_service_unit_files"]) == len(models)
    assert len(variables["vllm_service_verification_unit_files"]) == sum("signature" in m for m in models.values())
    searched = [(templated(variables, find["paths"]), find.get("patterns", "*"))
                for find in (t["ansible.builtin.find"] for t in tasks_of("retire_stale.yml")
                             if "ansible.builtin.find" in t)]
    for name in WRITTEN_PER_MODEL.values():
        for path in map(Path, variables[name]):
            assert any(str(path.parent) == folder and fnmatch.fnmatch(path.name, pattern)
                       for folder, pattern in searched), (name, str(path))
    # no served name (a slug: letters, digits, '-') can name the gateway's key file as its environment
    key_file = Path(variables["vllm_service_gateway_key_file"])
    assert key_file.parent == Path(variables["vllm_service_config_dir"]) and "_" in key_file.stem
    assert str(key_file) not in variables["vllm_service_env_files"]
