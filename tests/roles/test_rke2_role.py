"""The rke2 role on real podman hosts of the roles' lab, with za-national-dc's rendered variables, up to what needs
RKE2's binaries: a test-made release (a small tarball, an images file and a checksum file over them) bind-mounted
read-only into the hosts where the in-country mirror would serve it (file://). The role fetches and verifies good
artifacts, refuses a missing one and a tampered one (and a tampered checksum file) naming the file before anything
is unpacked, writes its configuration files exactly as sovkit renders them, and a second run changes nothing. RKE2
itself is not started (rke2_install_enabled is off, as in a rehearsal): no release binaries are here.

Run (root, podman, runc, mmdebstrap, dpkg-scanpackages; see scripts/host-deps.sh):
    .venv/bin/python -m pytest -p no:cacheprovider -q -m hosts tests/roles/test_rke2_role.py
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.hosts import Attachment, BuiltImage, HostSpec, Lab, Podman
from sovkit.render.inventory import LOCAL_CONNECTION, render_inventory

sys.path.insert(0, str(Path(__file__).parent))
from harden_lab import REPO_ROOT, ansible_env

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

ZA = REPO_ROOT / "stacks" / "Pulumi.za-national-dc.yaml"
NETWORK = "sovkit-test-in"  # conftest's in-country network (198.51.100.0/24)
HOSTS = {"rke2-test-server": ("cp-01", "198.51.100.70"), "rke2-test-agent": ("gpu-01", "198.51.100.71")}
MIRROR = "/srv/rke2-mirror"  # where the hosts see the test-made mirror folder, read-only
TARBALL, IMAGES, CHECKSUMS = "rke2.linux-amd64.tar.gz", "rke2-images.linux-amd64.tar.zst", "sha256sum-amd64.txt"
TOKEN = "t" * 48
# rke2-server's environment as the converge renders it from za's etcdSnapshotCredentials (server_environment)
ENVIRONMENT = "AWS_ACCESS_KEY_ID=AKIAZASNAPSHOTS0001\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCY/za-etcd\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def release(folder: Path, *, images: bytes = b"images of a test release\n") -> str:
    """A test release in `folder`: a tarball with bin/rke2, an images file, and a checksum file over both (as
    sha256sum writes it). Returns the pin of the checksum file (sha256:<hex>)."""
    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        body = b"#!/bin/sh\necho not rke2\n"
        info = tarfile.TarInfo("bin/rke2")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    (folder / TARBALL).write_bytes(buffer.getvalue())
    (folder / IMAGES).write_bytes(images)
    sums = f"{sha256((folder / TARBALL).read_bytes())}  {TARBALL}\n{sha256(images)}  {IMAGES}\n"
    (folder / CHECKSUMS).write_text(sums)
    return "sha256:" + sha256(sums.encode())


def mirror(root: Path) -> dict[str, str]:
    """The mirror's folders, each a case, and the pin each case is run with."""
    pins = {"good": release(root / "good")}
    pins["missing"] = release(root / "missing")
    (root / "missing" / IMAGES).unlink()
    pins["tampered"] = release(root / "tampered")
    (root / "tampered" / IMAGES).write_bytes(b"images someone replaced\n")  # the checksum file still says otherwise
    release(root / "tampered-checksums")
    with (root / "tampered-checksums" / CHECKSUMS).open("a") as sums:
        sums.write(f"{'0' * 64}  something-else\n")
    pins["tampered-checksums"] = pins["good"]  # the stack pins the true file; the mirror serves another
    return pins


def rendered() -> dict[str, dict]:
    """{container: its variables}: za-national-dc's site-wide rke2 variables and cp-01's or gpu-01's own."""
    inventory = render_inventory(load_stack(ZA))
    site = {k: v for k, v in inventory["all"]["vars"].items() if k.startswith("rke2_")}
    hosts = {h: v for group in inventory["all"]["children"].values() for h, v in group["hosts"].items() if v}
    return {container: {**site, **{k: v for k, v in hosts[node].items() if k.startswith("rke2_")}}
            for container, (node, _) in HOSTS.items()}


def play(podman: Podman, workdir: Path, case: str, pin: str, **overrides: object) -> dict:
    """The rke2 role on both hosts, against the mirror folder of `case`, staged in a folder of its own: its exit
    status, per-host stats and the messages of what failed (from ansible-playbook's JSON callback, so that a long
    message is never folded across lines)."""
    local = {"ansible_connection": LOCAL_CONNECTION, "ansible_remote_tmp": "/root/.ansible/tmp"}
    hosts = {name: {**variables, **local, "ansible_host": name, "rke2_token": TOKEN,
                    "rke2_server_environment": ENVIRONMENT,
                    "rke2_artifacts_url": f"file://{MIRROR}/{case}/", "rke2_checksums_sha256": pin,
                    "rke2_staging_dir": f"/var/lib/sovkit/rke2/{case}", "rke2_install_enabled": False, **overrides}
             for name, variables in rendered().items()}
    (workdir / f"{case}.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=True))
    (workdir / "play.yml").write_text(yaml.safe_dump(
        [{"name": "rke2", "hosts": "all", "gather_facts": False, "roles": ["rke2"]}], sort_keys=False))
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(workdir / f"{case}.yml"),
                           str(workdir / "play.yml")], cwd=REPO_ROOT,
                          env={**ansible_env(podman), "ANSIBLE_STDOUT_CALLBACK": "json"}, capture_output=True,
                          text=True, check=False, timeout=900)
    assert "{" in proc.stdout, proc.stderr[-4000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    failed = []
    for task in report["plays"][0]["tasks"]:
        for result in task["hosts"].values():
            items = result.get("results") or [result]
            failed += [str(i.get("msg", "")) for i in items if i.get("failed") and not i.get("ignored")]
    return {"rc": proc.returncode, "seconds": time.monotonic() - started, "stats": report["stats"],
            "failed": " | ".join(failed)}


@pytest.fixture(scope="module")
def hosts(podman: Podman, host_image: BuiltImage, lab: Lab,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    workdir = tmp_path_factory.mktemp("rke2")
    pins = mirror(workdir / "mirror")
    lab.start(*[HostSpec(name, host_image.tag, (Attachment(NETWORK, address),),
                         (f"{workdir / 'mirror'}:{MIRROR}:ro",)) for name, (_, address) in HOSTS.items()])
    try:
        yield {"workdir": workdir, "pins": pins, "podman": podman}
    finally:
        lab.stop(*HOSTS)


@pytest.fixture(scope="module")
def good(hosts: dict) -> dict:
    """The good release, converged twice."""
    first = play(hosts["podman"], hosts["workdir"], "good", hosts["pins"]["good"])
    second = play(hosts["podman"], hosts["workdir"], "good", hosts["pins"]["good"])
    return {**hosts, "first": first, "second": second}


def on(podman: Podman, host: str, *argv: str) -> str:
    return podman.exec(host, list(argv))


def test_good_artifacts_are_verified_and_staged(good):
    assert good["first"]["rc"] == 0, good["first"]["failed"]
    for host in HOSTS:
        for name in (TARBALL, IMAGES, CHECKSUMS):
            staged = f"/var/lib/sovkit/rke2/good/{name}"
            assert on(good["podman"], host, "stat", "-c", "%a %U", staged).split() == ["600", "root"]
            assert on(good["podman"], host, "sha256sum", staged).split()[0] == sha256(
                (good["workdir"] / "mirror" / "good" / name).read_bytes())


def test_a_second_run_changes_nothing(good):
    assert good["second"]["rc"] == 0, good["second"]["failed"]
    assert {host: stats["changed"] for host, stats in good["second"]["stats"].items()} == dict.fromkeys(HOSTS, 0)


@pytest.mark.parametrize("host", list(HOSTS))
def test_config_files_are_written_exactly_as_rendered(good, host):
    variables = rendered()[host]
    podman = good["podman"]

    def read(path: str, mode: str = "600") -> str:
        assert on(podman, host, "stat", "-c", "%a %U %G", path).split() == [mode, "root", "root"], path
        return on(podman, host, "cat", path)

    assert yaml.safe_load(read("/etc/rancher/rke2/config.yaml")) == variables["rke2_config"]
    assert read("/etc/rancher/rke2/token") == TOKEN + "\n"
    server = host == "rke2-test-server"
    assert variables["rke2_server"] is server
    for path, expected in (("/etc/rancher/rke2/audit-policy.yaml", variables["rke2_audit_policy"]),
                           ("/etc/rancher/rke2/pod-security.yaml", variables["rke2_pod_security"])):
        if server:
            assert yaml.safe_load(read(path)) == expected
        else:
            assert on(podman, host, "test", "!", "-e", path) == ""
    # the etcd snapshot store's credentials, in the file rke2-server.service reads: servers only, root 0600
    if server:
        assert read("/etc/default/rke2-server") == ENVIRONMENT
    else:
        assert on(podman, host, "test", "!", "-e", "/etc/default/rke2-server") == ""
    sysctls = read("/etc/sysctl.d/60-rke2-cis.conf", "644").splitlines()[1:]
    assert sysctls == [f"{k} = {v}" for k, v in sorted(variables["rke2_cis_sysctls"].items())]
    etcd = on(podman, host, "sh", "-c", "getent passwd etcd || true").strip()
    if server:  # the CIS profile's unprivileged etcd user, without a login
        assert etcd.split(":")[6] == "/sbin/nologin", etcd
    else:
        assert etcd == ""


@pytest.mark.parametrize("host", list(HOSTS))
def test_rke2_is_not_installed_or_started(good, host):
    """rke2_install_enabled is off: nothing of the release is unpacked, no unit exists."""
    probe = ("test -e /usr/local/bin/rke2 && echo binary; "
             "systemctl cat rke2-server.service rke2-agent.service >/dev/null 2>&1 && echo unit; true")
    assert on(good["podman"], host, "sh", "-c", probe).split() == []


@pytest.mark.parametrize(("case", "named"), [
    ("missing", IMAGES), ("tampered", IMAGES), ("tampered-checksums", CHECKSUMS)])
def test_a_missing_or_tampered_artifact_is_refused_naming_it_before_anything_is_unpacked(hosts, case, named):
    run = play(hosts["podman"], hosts["workdir"], case, hosts["pins"][case])
    assert run["rc"] != 0
    assert f"{named} from file://{MIRROR}/{case}/: refused before anything is unpacked" in run["failed"], run["failed"]
    for host in HOSTS:
        # get_url moves a download into place only once it matches: nothing unverified is staged, nothing unpacked
        staged = on(hosts["podman"], host, "sh", "-c", f"ls /var/lib/sovkit/rke2/{case}/ 2>/dev/null || true")
        assert named not in staged.split()
        assert on(hosts["podman"], host, "sh", "-c",
                  "test -e /usr/local/bin/rke2 && echo present || echo absent").strip() == "absent"


def test_an_artifact_mirror_abroad_is_refused_before_any_change(hosts):
    run = play(hosts["podman"], hosts["workdir"], "good", hosts["pins"]["good"],
               rke2_artifacts_url="https://github.com/rancher/rke2/releases/download/v1.33.5%2Brke2r1/")
    assert run["rc"] != 0
    assert "rke2_artifacts_url (from sovereign-ai:rke2Artifacts): refusing before any change." in run["failed"]
