"""rke2: what the rke2 role writes on each node of a cluster the kit installs (SOV-KUBE-*).

Every path and value expected here is the host's own inventory variable, rendered from the stack
(sovkit/render/rke2.py) and given to the role: the configuration folder, the cluster token's file, config.yaml, the
API server's audit policy and Pod Security admission files (servers), rke2-server's environment (servers that copy
etcd snapshots to S3), the CIS profile's kernel parameters and the etcd user (servers).

These are files and accounts the role writes before RKE2 first starts, so each check holds where RKE2 itself is not
installed (a rehearsal turns rke2_install_enabled off): nothing here needs a running RKE2. Secrets (the cluster
token, the snapshot store's credentials) are never read into evidence or a failure message: only their files' type,
mode and owner are, and of config.yaml only key names where a value could be one.
"""

from __future__ import annotations

import shlex

import pytest
import yaml

from .conftest import not_applicable, sysctl_assignments

# playbooks/platform.yml runs the rke2 role on the hosts of these inventory groups (sovkit/render/inventory.py)
RKE2_GROUPS = ("rke2_servers", "rke2_agents")
# the variables naming each file the role writes, with the mode it writes it with (roles/rke2/tasks/config.yml)
ROOT_ONLY = {"rke2_config_dir": 0o700, "rke2_config_file": 0o600, "rke2_token_file": 0o600}
# config.yaml keys that would hold a secret in the file itself: the kit names files instead (token-file) or keeps
# the value in rke2-server's environment (the snapshot store's credentials)
SECRET_KEYS = ("token", "agent-token", "etcd-s3-access-key", "etcd-s3-secret-key")


@pytest.fixture(scope="module")
def rke2_node(target) -> None:
    """The host is one the platform play gives the rke2 role, as the inventory's groups say."""
    if not set(target[1].get("group_names", [])) & set(RKE2_GROUPS):
        not_applicable("the kit installs no RKE2 on this host (a hosts-mode site, or a cluster of the operator's own)")


@pytest.fixture(scope="module")
def rke2_server(rke2_node, site) -> None:
    """The host runs rke2-server (rke2_server, as the role reads it): the API server's and etcd's files are there."""
    if not site["rke2_server"]:
        not_applicable("an RKE2 agent: the API server, its audit policy, Pod Security admission and etcd run on the "
                       "servers")


def stat_paths(host, paths: list[str]) -> dict[str, tuple[str, int, str, str, int]]:
    """{path: (file type, mode, owner, group, size)} of the paths that exist, from one stat."""
    out = host.run("stat -c '%n|%F|%a|%U|%G|%s' " + " ".join(shlex.quote(p) for p in paths)).stdout
    rows = (line.rsplit("|", 5) for line in out.splitlines() if line.count("|") >= 5)
    return {path: (kind, int(mode, 8), user, group, int(size)) for path, kind, mode, user, group, size in rows}


def read_yaml(host, path: str) -> dict:
    """A YAML file the role wrote, or a failure naming it (the role has not run, or the file was removed)."""
    f = host.file(path)
    if not f.exists:
        pytest.fail(f"no {path}: the rke2 role has not written it on this host")
    return yaml.safe_load(f.content_string) or {}


def rke2_paths(site) -> list[str]:
    """Every file and folder of the role whose type, mode and owner a check reads."""
    return [site[v] for v in (*ROOT_ONLY, "rke2_server_environment_file", "rke2_audit_policy_file",
                              "rke2_pod_security_file", "rke2_sysctl_file")]


@pytest.fixture(scope="module")
def modes(host, site, rke2_node) -> dict[str, tuple[str, int, str, str, int]]:
    return stat_paths(host, rke2_paths(site))


@pytest.fixture(scope="module")
def node_config(host, site, rke2_node) -> dict:
    return read_yaml(host, site["rke2_config_file"])


def _is(found: tuple | None, kind: str, mode: int) -> bool:
    return bool(found) and found[0].startswith(kind) and found[1:4] == (mode, "root", "root")


def _shown(found: tuple | None) -> str:
    return "absent" if not found else f"{found[0]}, {found[1]:04o} {found[2]}:{found[3]}"


@pytest.mark.control("SOV-KUBE-001")
@pytest.mark.parametrize("variable", list(ROOT_ONLY))
def test_rke2_files_are_roots_alone(modes, site, evidence, variable):
    """The configuration folder (0700), the cluster token (0600) and config.yaml (0600) are root's alone: the token
    lets any machine join the cluster as a node, and config.yaml names the files that hold the cluster's security."""
    path, mode = site[variable], ROOT_ONLY[variable]
    kind = "directory" if variable == "rke2_config_dir" else "regular"
    evidence(f"{path}: {_shown(modes.get(path))}")
    assert _is(modes.get(path), kind, mode), f"{path} is {_shown(modes.get(path))}, not a {kind} root:root {mode:04o}"


@pytest.mark.control("SOV-KUBE-002")
def test_config_yaml_runs_the_cis_profile(node_config, site, evidence):
    """RKE2 runs with `profile: cis` (docs.rke2.io "CIS Hardening Guide"): it then refuses to start unless the CIS
    prerequisites hold and applies the benchmark's settings to the API server, the kubelet and etcd."""
    evidence(f"{site['rke2_config_file']}: profile {node_config.get('profile')!r}")
    assert node_config.get("profile") == "cis"


@pytest.mark.control("SOV-KUBE-002")
def test_config_yaml_reads_the_token_from_its_file(node_config, site, evidence):
    """config.yaml names the cluster token's file (token-file) and holds no secret itself: the token stays in the one
    root-only file the role writes."""
    inline = sorted(k for k in SECRET_KEYS if k in node_config)
    evidence(f"token-file {node_config.get('token-file')!r}; secret keys in config.yaml: {inline}")
    assert node_config.get("token-file") == site["rke2_token_file"]
    assert not inline, f"{site['rke2_config_file']} holds {inline} itself"


@pytest.mark.control("SOV-KUBE-002")
def test_config_yaml_is_what_the_stack_renders(node_config, site, evidence):
    """Every setting of the node's config.yaml is the stack's (sovkit/render/rke2.py node_config): its labels, join
    address, networks, secrets encryption, audit log and snapshots; nothing added or changed by hand. Only the
    names of differing keys are reported (a value added by hand could be a secret)."""
    rendered = site["rke2_config"]
    differing = sorted(k for k in {*node_config, *rendered} if node_config.get(k) != rendered.get(k))
    evidence(f"{len(node_config)} keys; differing from the stack: {differing}")
    assert not differing, f"{site['rke2_config_file']}: these keys differ from the stack's: {differing}"


@pytest.mark.control("SOV-KUBE-003")
def test_audit_policy_is_roots_alone(modes, site, rke2_server, evidence):
    """The API server's audit policy is root's alone (0600): whoever could change it could stop the API's audit
    trail."""
    path = site["rke2_audit_policy_file"]
    evidence(f"{path}: {_shown(modes.get(path))}")
    assert _is(modes.get(path), "regular", 0o600), f"{path} is {_shown(modes.get(path))}, not root:root 0600"


@pytest.mark.control("SOV-KUBE-003")
def test_audit_policy_is_what_the_stack_renders(host, site, rke2_server, evidence):
    """Every request to the API is audited, Secrets and tokens at Metadata level only (no secret body reaches the
    log): the policy on the server is the stack's (sovkit/render/rke2.py audit_policy)."""
    policy = read_yaml(host, site["rke2_audit_policy_file"])
    evidence(f"rules: {[(r.get('level'), r.get('resources')) for r in policy.get('rules', [])]}")
    assert policy == site["rke2_audit_policy"]


@pytest.mark.control("SOV-KUBE-003")
def test_config_yaml_gives_the_api_server_its_audit_policy_and_log(node_config, site, rke2_server, evidence):
    """The API server reads that policy (audit-policy-file) and keeps its audit log where and as long as the stack
    says (kube-apiserver-arg: the log's path and the site's retention)."""
    audit = [a for a in node_config.get("kube-apiserver-arg", []) if a.startswith("audit-log-")]
    wanted = [a for a in site["rke2_config"].get("kube-apiserver-arg", []) if a.startswith("audit-log-")]
    evidence(f"audit-policy-file {node_config.get('audit-policy-file')!r}; {audit}")
    assert node_config.get("audit-policy-file") == site["rke2_audit_policy_file"]
    assert audit == wanted and wanted


@pytest.mark.control("SOV-KUBE-004")
def test_pod_security_file_is_roots_alone(modes, site, rke2_server, evidence):
    """The Pod Security admission configuration is root's alone (0600): whoever could change it could exempt any
    namespace from the restricted level."""
    path = site["rke2_pod_security_file"]
    evidence(f"{path}: {_shown(modes.get(path))}")
    assert _is(modes.get(path), "regular", 0o600), f"{path} is {_shown(modes.get(path))}, not root:root 0600"


@pytest.mark.control("SOV-KUBE-004")
def test_pod_security_is_what_the_stack_renders(host, site, rke2_server, evidence):
    """Pods are held to the `restricted` Pod Security level cluster-wide (enforced, audited, warned), only kube-system
    exempt: the configuration on the server is the stack's (sovkit/render/rke2.py pod_security)."""
    admission = read_yaml(host, site["rke2_pod_security_file"])
    plugins = admission.get("plugins") or [{}]
    configuration = plugins[0].get("configuration") or {}
    evidence(f"defaults {configuration.get('defaults')}; exempt {configuration.get('exemptions')}")
    assert admission == site["rke2_pod_security"]


@pytest.mark.control("SOV-KUBE-004")
def test_config_yaml_gives_the_api_server_its_pod_security(node_config, site, rke2_server, evidence):
    """The API server reads that configuration (pod-security-admission-config-file)."""
    named = node_config.get("pod-security-admission-config-file")
    evidence(f"pod-security-admission-config-file {named!r}")
    assert named == site["rke2_pod_security_file"]


@pytest.mark.control("SOV-KUBE-005")
def test_snapshot_credentials_only_where_snapshots_go_to_s3(modes, site, rke2_node, evidence):
    """rke2-server's environment file holds the etcd snapshot store's credentials: it is root's alone (0600) on each
    server whose config.yaml copies snapshots to S3 (etcd-s3), and on no other node. Its content is never read."""
    path = site["rke2_server_environment_file"]
    wanted = bool(site["rke2_server"]) and bool(site["rke2_config"].get("etcd-s3"))
    found = modes.get(path)
    evidence(f"{path}: {_shown(found)}{(', empty' if not found[4] else ', not empty') if found else ''} (expected: "
             f"{'present, root:root 0600' if wanted else 'absent: no snapshot of this node goes to S3'})")
    if wanted:
        assert _is(found, "regular", 0o600) and found[4] > 0, f"{path} is {_shown(found)}, not a root:root 0600 file"
    else:
        assert found is None, f"{path} is here ({_shown(found)}), where no snapshot goes to S3"


@pytest.mark.control("SOV-KUBE-005")
def test_config_yaml_holds_no_snapshot_credentials(node_config, site, rke2_node, evidence):
    """The snapshot store's credentials are not in config.yaml (etcd-s3-access-key, etcd-s3-secret-key): only
    rke2-server's environment holds them."""
    inline = sorted(k for k in ("etcd-s3-access-key", "etcd-s3-secret-key") if k in node_config)
    evidence(f"etcd-s3 {node_config.get('etcd-s3', False)}; credential keys in config.yaml: {inline}")
    assert not inline


@pytest.mark.control("SOV-KUBE-006")
def test_etcd_runs_as_an_unprivileged_user(host, site, rke2_server, evidence):
    """Under the CIS profile etcd's data belongs to an unprivileged system account, without a login shell, in its
    own group (docs.rke2.io "CIS Hardening Guide"); RKE2 refuses to start a server without it."""
    user = host.user(site["rke2_etcd_user"])
    if not user.exists:
        pytest.fail(f"no user {site['rke2_etcd_user']} on this server")
    evidence(f"{user.name}: uid {user.uid}, group {user.group}, shell {user.shell}")
    assert user.uid < 1000 and user.group == site["rke2_etcd_user"]
    assert user.shell in ("/sbin/nologin", "/usr/sbin/nologin")


@pytest.mark.control("SOV-KUBE-006")
def test_cis_kernel_parameters_file(host, modes, site, evidence):
    """The CIS profile's kernel parameters are written to their sysctl file (root 0644), exactly the stack's."""
    path = site["rke2_sysctl_file"]
    assert _is(modes.get(path), "regular", 0o644), f"{path} is {_shown(modes.get(path))}, not root:root 0644"
    written = sysctl_assignments(host.file(path).content_string.splitlines())
    evidence(f"{path}: {_shown(modes.get(path))}; {written}")
    assert written == {k: str(v) for k, v in site["rke2_cis_sysctls"].items()}


@pytest.mark.control("SOV-KUBE-006")
def test_cis_kernel_parameters_are_what_boot_applies(rke2_node, boot_sysctls, site, evidence):
    """At boot each of the CIS profile's kernel parameters ends at the stack's value, whatever file sorts after the
    kit's: the kubelet refuses to start with profile: cis otherwise."""
    boot = boot_sysctls.values
    wrong = {k: boot.get(k) for k, v in site["rke2_cis_sysctls"].items() if boot.get(k, ("",))[0] != str(v)}
    evidence(f"{boot_sysctls.files} files; not the stack's at boot: {wrong}")
    assert wrong == {}


@pytest.mark.control("SOV-KUBE-006")
def test_cis_kernel_parameters_in_force(rke2_node, in_container, host, site, evidence):
    """The CIS profile's kernel parameters hold now, not only in the file (the role applies them on real hosts).
    A container is skipped here, after the node's own test, rather than by live_only (which runs first): on a host
    without RKE2 the check does not apply, whatever the host is."""
    if in_container:
        pytest.skip("container host: kernel parameters are not namespaced (a container's are the machine's); "
                    "runs on real hosts")
    names = sorted(site["rke2_cis_sysctls"])
    now = dict(zip(names, host.check_output("sysctl -n " + " ".join(shlex.quote(n) for n in names)).splitlines(),
                   strict=True))
    evidence(now)
    assert now == {k: str(v) for k, v in site["rke2_cis_sysctls"].items()}
