"""The rke2 role's verification and configuration tasks, run for real by ansible-playbook on this machine (a local
connection) with za-national-dc's rendered variables, every path it writes moved under a temporary folder and the
CIS concern (a system user, kernel parameters) off: the test-made release is fetched from a file:// mirror, verified
(good), refused naming the file (missing, tampered, tampered checksum file, not listed), the configuration files
are written exactly as rendered, and a second run changes nothing. The compliance suite's checks of those files
(SOV-KUBE-001..005, sovkit/compliance/test_platform_rke2.py) pass on what the role wrote, through testinfra's local
backend, and fail once a file is loosened. The podman-host version, with the CIS concern on, is
tests/roles/test_rke2_role.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import testinfra
import yaml

from sovkit.config import load_stack
from sovkit.render.inventory import render_inventory

ROOT = Path(__file__).resolve().parents[2]
ZA = ROOT / "stacks" / "Pulumi.za-national-dc.yaml"
TARBALL, IMAGES, CHECKSUMS = "rke2.linux-amd64.tar.gz", "rke2-images.linux-amd64.tar.zst", "sha256sum-amd64.txt"
TOKEN = "t" * 48
# what the converge renders from za's etcdSnapshotCredentials (sovkit/render/rke2.py server_environment)
ENVIRONMENT = "AWS_ACCESS_KEY_ID=AKIAZASNAPSHOTS0001\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCY/za-etcd\n"


def release(folder: Path, *, listed: tuple[str, ...] = (TARBALL, IMAGES)) -> str:
    folder.mkdir(parents=True)
    (folder / TARBALL).write_bytes(b"tarball of a test release\n")
    (folder / IMAGES).write_bytes(b"images of a test release\n")
    sums = "".join(f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in listed)
    (folder / CHECKSUMS).write_text(sums)
    return "sha256:" + hashlib.sha256(sums.encode()).hexdigest()


def etc_of(tmp: Path, node: str) -> Path:
    return tmp / "etc" if node == "cp-01" else tmp / f"etc-{node}"


def environment_file(tmp: Path, node: str) -> Path:
    """Where /etc/default/rke2-server lands for `node` (its folder exists, as /etc/default does on a host)."""
    return tmp / f"default-{node}" / "rke2-server"


def variables(tmp: Path, case: str, pin: str, node: str, environment: str = ENVIRONMENT, *,
              snapshots_to_s3: bool = True) -> dict:
    inventory = render_inventory(load_stack(ZA))
    host = next(h for g in inventory["all"]["children"].values() for n, h in g["hosts"].items() if n == node and h)
    out = {k: v for k, v in {**inventory["all"]["vars"], **host}.items() if k.startswith("rke2_")}
    etc = etc_of(tmp, node)
    if not snapshots_to_s3:  # a site whose state is a file:// path: its config.yaml has no etcd-s3
        out["rke2_config"] = {k: v for k, v in out["rke2_config"].items() if not k.startswith("etcd-s3")}
    out.update({"rke2_token": TOKEN, "rke2_server_environment": environment,
                "rke2_server_environment_file": str(environment_file(tmp, node)),
                "rke2_artifacts_url": f"file://{tmp / 'mirror' / case}/",
                "rke2_checksums_sha256": pin, "rke2_staging_dir": str(tmp / "staging" / case),
                "rke2_install_enabled": False, "rke2_cis_enabled": False, "rke2_config_dir": str(etc),
                "rke2_config_file": str(etc / "config.yaml"),
                "rke2_token_file": str(etc / "token"), "rke2_audit_policy_file": str(etc / "audit-policy.yaml"),
                "rke2_pod_security_file": str(etc / "pod-security.yaml"), "rke2_install_prefix": str(tmp / "usr"),
                "ansible_connection": "local", "ansible_python_interpreter": sys.executable})
    # config.yaml names the moved files, as it names the rendered ones on a node (what SOV-KUBE-002..004 check)
    moved = {"token-file": "rke2_token_file", "audit-policy-file": "rke2_audit_policy_file",
             "pod-security-admission-config-file": "rke2_pod_security_file"}
    out["rke2_config"] = {k: out[moved[k]] if k in moved else v for k, v in out["rke2_config"].items()}
    return out


def play(tmp: Path, case: str, pin: str, node: str = "cp-01", environment: str = ENVIRONMENT, *,
         snapshots_to_s3: bool = True) -> dict:
    """(exit status, {task: result}, recap) of the rke2 role on this machine."""
    environment_file(tmp, node).parent.mkdir(exist_ok=True)
    (tmp / "inventory.yml").write_text(yaml.safe_dump(
        {"all": {"hosts": {"here": variables(tmp, case, pin, node, environment, snapshots_to_s3=snapshots_to_s3)}}}))
    (tmp / "play.yml").write_text(yaml.safe_dump(
        [{"name": "rke2", "hosts": "all", "gather_facts": False, "roles": ["rke2"]}], sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp / "inventory.yml"),
                           str(tmp / "play.yml")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    tasks = {t["task"]["name"]: t["hosts"]["here"] for t in report["plays"][0]["tasks"]}
    return {"rc": proc.returncode, "tasks": tasks, "stats": report["stats"]["here"]}


def failure(run: dict) -> str:
    return " | ".join(r.get("msg", "") if "results" not in r else " | ".join(i.get("msg", "") for i in r["results"])
                      for r in run["tasks"].values() if r.get("failed"))


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rke2-local")


@pytest.fixture(scope="module")
def good(tmp: Path) -> dict:
    pin = release(tmp / "mirror" / "good")
    return {"pin": pin, "first": play(tmp, "good", pin), "second": play(tmp, "good", pin)}


def test_good_artifacts_are_verified_and_staged(tmp, good):
    assert good["first"]["rc"] == 0, failure(good["first"])
    for name in (TARBALL, IMAGES, CHECKSUMS):
        staged = tmp / "staging" / "good" / name
        assert staged.read_bytes() == (tmp / "mirror" / "good" / name).read_bytes()
        assert staged.stat().st_mode & 0o777 == 0o600


def test_the_files_are_written_exactly_as_rendered(tmp, good):
    rendered = variables(tmp, "good", good["pin"], "cp-01")
    etc = tmp / "etc"
    assert yaml.safe_load((etc / "config.yaml").read_text()) == rendered["rke2_config"]
    assert yaml.safe_load((etc / "audit-policy.yaml").read_text()) == rendered["rke2_audit_policy"]
    assert yaml.safe_load((etc / "pod-security.yaml").read_text()) == rendered["rke2_pod_security"]
    assert (etc / "token").read_text() == TOKEN + "\n"
    assert {p.name: p.stat().st_mode & 0o777 for p in etc.iterdir()} == dict.fromkeys(
        ["config.yaml", "audit-policy.yaml", "pod-security.yaml", "token"], 0o600)
    assert not (tmp / "usr").exists()  # nothing installed: rke2_install_enabled is off


@pytest.fixture(scope="module")
def checks(pytestconfig: pytest.Config) -> ModuleType:
    """The suite's module of RKE2 checks, imported once its markers are known (its conftest registers them)."""
    from sovkit.compliance import conftest
    conftest.pytest_configure(pytestconfig)
    from sovkit.compliance import test_platform_rke2
    return test_platform_rke2


def suite(checks: ModuleType, site: dict) -> dict[str, str]:
    """The compliance suite's checks of the role's files (SOV-KUBE-001..005) on this machine, through testinfra's local
    backend, with `site` as the host's variables: {check: "passed", or why it failed}. The server-only checks run
    where the variables say a server (their fixture would find them not applicable elsewhere)."""
    host, seen = testinfra.get_host("local://"), []
    modes, config = checks.stat_paths(host, checks.rke2_paths(site)), checks.read_yaml(host, site["rke2_config_file"])
    roots_alone = checks.test_rke2_files_are_roots_alone
    runs = {f"{roots_alone.__name__}[{v}]": (roots_alone, modes, site, seen.append, v) for v in checks.ROOT_ONLY}
    for check in (checks.test_config_yaml_runs_the_cis_profile, checks.test_config_yaml_reads_the_token_from_its_file,
                  checks.test_config_yaml_is_what_the_stack_renders):
        runs[check.__name__] = (check, config, site, seen.append)
    runs["test_snapshot_credentials_only_where_snapshots_go_to_s3"] = (
        checks.test_snapshot_credentials_only_where_snapshots_go_to_s3, modes, site, None, seen.append)
    runs["test_config_yaml_holds_no_snapshot_credentials"] = (
        checks.test_config_yaml_holds_no_snapshot_credentials, config, site, None, seen.append)
    if site["rke2_server"]:
        for check in (checks.test_audit_policy_is_roots_alone, checks.test_pod_security_file_is_roots_alone):
            runs[check.__name__] = (check, modes, site, None, seen.append)
        for check in (checks.test_audit_policy_is_what_the_stack_renders,
                      checks.test_pod_security_is_what_the_stack_renders):
            runs[check.__name__] = (check, host, site, None, seen.append)
        for check in (checks.test_config_yaml_gives_the_api_server_its_audit_policy_and_log,
                      checks.test_config_yaml_gives_the_api_server_its_pod_security):
            runs[check.__name__] = (check, config, site, None, seen.append)
    out = {}
    for name, (check, *args) in runs.items():
        try:
            check(*args)
            out[name] = "passed"
        except AssertionError as err:
            out[name] = f"failed: {str(err).splitlines()[0]}"
    assert TOKEN not in repr(seen) and "AKIAZASNAPSHOTS0001" not in repr(seen)  # no secret in the evidence
    return out


def test_the_compliance_suite_passes_the_servers_files_and_fails_a_loosened_one(tmp, good, checks):
    site = variables(tmp, "good", good["pin"], "cp-01")
    found = suite(checks, site)
    assert len(found) == 14 and found == dict.fromkeys(found, "passed"), found
    token, config = Path(site["rke2_token_file"]), yaml.safe_load(Path(site["rke2_config_file"]).read_text())
    token.chmod(0o644)
    site["rke2_config"] = {**config, "profile": "none", "token": TOKEN}  # as if config.yaml were rendered so
    try:
        loosened = suite(checks, site)
    finally:
        token.chmod(0o600)
    assert {k for k, v in loosened.items() if v != "passed"} == {
        "test_rke2_files_are_roots_alone[rke2_token_file]", "test_config_yaml_is_what_the_stack_renders"}
    assert TOKEN not in repr(loosened)


def test_a_second_run_changes_nothing(good):
    assert good["second"]["rc"] == 0 and good["second"]["stats"]["changed"] == 0, good["second"]["stats"]


def test_a_server_gets_the_etcd_snapshot_stores_credentials_in_rke2_servers_environment(tmp, good):
    """za copies etcd snapshots to its S3 state store: /etc/default/rke2-server (the unit's EnvironmentFile) holds
    exactly the rendered credentials, root 0600, written before RKE2 starts, and never shown in the play's output."""
    written = environment_file(tmp, "cp-01")
    assert written.read_text() == ENVIRONMENT
    info = written.stat()
    assert (info.st_mode & 0o777, info.st_uid, info.st_gid) == (0o600, 0, 0)
    name = ("rke2 : SOV-KUBE-005 | PATCH | rke2-server's environment: the etcd snapshot store's credentials "
            "(servers; root only)")
    assert good["first"]["tasks"][name]["changed"] is True and good["second"]["tasks"][name]["changed"] is False
    assert "AKIAZASNAPSHOTS0001" not in json.dumps(good["first"]["tasks"])


REMOVED_ENVIRONMENT = ("rke2 : SOV-KUBE-005 | PATCH | Remove rke2-server's environment where no snapshot goes to "
                       "S3, and from agents")


def test_an_agent_never_gets_rke2_servers_environment(tmp, good, checks):
    """Not even one left from before (a node that was a server): the credentials live on servers only."""
    stale = environment_file(tmp, "gpu-01")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text(ENVIRONMENT)
    run = play(tmp, "good", good["pin"], node="gpu-01")
    assert run["rc"] == 0, failure(run)
    assert run["tasks"][REMOVED_ENVIRONMENT]["changed"]
    assert not environment_file(tmp, "gpu-01").exists()
    assert yaml.safe_load((etc_of(tmp, "gpu-01") / "config.yaml").read_text())["node-name"] == "gpu-01"
    found = suite(checks, variables(tmp, "good", good["pin"], "gpu-01"))  # the absent environment file included
    assert len(found) == 8 and found == dict.fromkeys(found, "passed"), found


def test_a_server_whose_snapshots_stay_on_it_has_the_file_removed(tmp, good):
    """Where no snapshot goes to S3 the converge renders an empty environment: a file left from before is removed."""
    first = play(tmp, "good", good["pin"], node="cp-02")
    assert first["rc"] == 0, failure(first)
    assert environment_file(tmp, "cp-02").read_text() == ENVIRONMENT
    emptied = play(tmp, "good", good["pin"], node="cp-02", environment="", snapshots_to_s3=False)
    assert emptied["rc"] == 0, failure(emptied)
    assert not environment_file(tmp, "cp-02").exists()
    removed = REMOVED_ENVIRONMENT
    assert emptied["tasks"][removed]["changed"]


def test_etcd_snapshots_to_s3_without_credentials_are_refused_before_anything_changes(tmp, good):
    run = play(tmp, "good", good["pin"], node="cp-03", environment="")
    assert run["rc"] != 0
    assert ("config.yaml copies etcd snapshots to objects.dc.gov.example (etcd-s3) but rke2_server_environment holds "
            "no credentials") in failure(run)
    assert not etc_of(tmp, "cp-03").exists() and not environment_file(tmp, "cp-03").exists()


@pytest.mark.parametrize(("case", "named", "spoil"), [
    ("missing", IMAGES, lambda folder: (folder / IMAGES).unlink()),
    ("tampered", TARBALL, lambda folder: (folder / TARBALL).write_bytes(b"replaced\n")),
    ("tampered-checksums", CHECKSUMS, lambda folder: (folder / CHECKSUMS).write_text("0" * 64 + "  x\n")),
])
def test_a_missing_or_tampered_file_is_refused_naming_it(tmp, case, named, spoil):
    pin = release(tmp / "mirror" / case)
    spoil(tmp / "mirror" / case)
    run = play(tmp, case, pin)
    assert run["rc"] != 0
    assert f"{named} from file://{tmp / 'mirror' / case}/: refused before anything is unpacked" in failure(run)
    assert not (tmp / "staging" / case / named).exists()  # get_url places a file only once it matches
    assert not (tmp / "usr").exists()


def test_an_artifact_the_checksum_file_does_not_list_is_refused_naming_it(tmp):
    pin = release(tmp / "mirror" / "unlisted", listed=(TARBALL,))
    run = play(tmp, "unlisted", pin)
    assert run["rc"] != 0
    assert f"{IMAGES}: {CHECKSUMS} lists no SHA-256 of it" in failure(run)
