"""On a host with its own kernel, the controls a container cannot prove pass, and each fails when broken.

Containers share this machine's kernel and get their mounts from their engine, so the compliance suite skips
nineteen checks per host there (auditd and its rules in the kernel, kernel sysctls, loaded modules, chrony
synchronised, LUKS under the data folders, swap, the mount options of /tmp, /dev/shm and the separate file
systems). Here the kit's hardening playbook converges a VM over SSH (see conftest.py), `sovkit verify` runs its
suite against it, and every one of those runs and passes; then each is broken on purpose, as a careless admin or
an attacker would, and the same check fails. The VM converges only the concerns a kernel proves (and the
package sources and firewall they need): the rest of the play is proven on the rehearsals' container hosts, and
emulation makes every task here slow.
"""

from __future__ import annotations

import ast
import shlex
import subprocess
from pathlib import Path

import pytest
from vm_lab import DATA_MOUNT, HOST, VmSite

from sovkit.render import sandbox

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "sovkit" / "compliance"
MODEL_SERVER_UNIT = ROOT / "roles/vllm_service/templates/etc/systemd/system/sovkit-vllm@.service.j2"

pytestmark = [pytest.mark.slow, pytest.mark.vm]

# The checks the suite marks live_only (skipped in containers): test function -> how many it runs per host.
KERNEL_CHECKS = {
    "test_audit_rules_loaded": 1, "test_auditd_running": 1, "test_data_volumes_encrypted": 1,
    "test_swap_off_or_encrypted": 1, "test_kernel_sysctl": 6, "test_unused_modules_not_loaded": 1,
    "test_chrony_synchronised": 1, "test_mount_options": 7,
}


# The play's tags for what a kernel proves, and what that needs: the in-country package sources, the firewall
# (NTP and the egress policy), the resolvers.
KERNEL_TAGS = ("--tags", "updates,sysctl,modules,mounts,ntp,dns,firewall,auditd,data_at_rest")


@pytest.fixture(scope="module")
def hardened(vm_site: VmSite) -> VmSite:
    first = vm_site.converge(*KERNEL_TAGS)
    assert first.returncode == 0, first.output[-6000:]
    again = vm_site.converge(*KERNEL_TAGS)
    assert again.returncode == 0, again.output[-6000:]
    assert again.changed == {HOST: 0}, again.changed_tasks()
    return vm_site


def live_only_checks() -> set[str]:
    """The suite's checks marked live_only, read from its source: what containers skip."""
    names = set()
    for path in SUITE.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and ast.unparse(d.func).endswith("mark.live_only")
                    for d in node.decorator_list):
                names.add(node.name)
    return names


def test_the_list_of_kernel_level_checks_is_the_suites():
    assert set(KERNEL_CHECKS) == live_only_checks()


def outcomes(site: VmSite, *select: str) -> dict[str, str]:
    report = site.verify(*(["-k", " or ".join(select)] if select else []))
    assert not report.host_errors, report.host_errors
    return {r.name: r.outcome for r in report.results}


def kernel_outcomes(found: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, outcome in found.items():
        base = name.split("[", 1)[0]
        if base in KERNEL_CHECKS:
            out.setdefault(base, []).append(outcome)
    return out


def test_every_kernel_level_check_runs_and_passes(hardened: VmSite):
    found = outcomes(hardened, *KERNEL_CHECKS)
    kernel = kernel_outcomes(found)
    assert {name: len(results) for name, results in kernel.items()} == KERNEL_CHECKS
    assert sum(KERNEL_CHECKS.values()) == 19
    assert {name: sorted(set(results)) for name, results in kernel.items()} == {n: ["passed"] for n in KERNEL_CHECKS}
    failed = {name: outcome for name, outcome in found.items() if outcome != "passed" and outcome != "skipped"}
    assert failed == {}


# (what is broken, the shell run as root to break it, the check that must then fail, the shell that repairs it)
BREAKS = [
    ("a kernel sysctl set back", "sysctl -qw kernel.dmesg_restrict=0",
     "test_kernel_sysctl", "sysctl -qw kernel.dmesg_restrict=1"),
    ("a disabled module loaded by path, around modprobe's refusal",
     "insmod $(find /lib/modules/$(uname -r) -name 'freevxfs.ko*' | head -1)",
     "test_unused_modules_not_loaded", "rmmod freevxfs"),
    ("auditd stopped", "systemctl kill --signal=TERM auditd && sleep 2",
     "test_auditd_running", "systemctl start auditd"),
    ("chrony stopped", "systemctl stop chrony",
     "test_chrony_synchronised", "systemctl start chrony && chronyc -n waitsync 60 0 0 1"),
    ("an unencrypted swap file", "dd if=/dev/zero of=/swapfile bs=1M count=32 status=none && chmod 600 /swapfile "
     "&& mkswap -q /swapfile && swapon /swapfile",
     "test_swap_off_or_encrypted", "swapoff /swapfile && rm /swapfile"),
    ("the model store moved off the LUKS volume", "umount {model_store}",
     "test_data_volumes_encrypted", f"mount --bind {DATA_MOUNT}/model_store {{model_store}}"),
    ("/tmp remounted to run programs, /var/log to honour device files",
     "mount -o remount,exec /tmp && mount -o remount,dev /var/log",
     "test_mount_options", "mount -o remount /tmp && mount -o remount /var/log"),
]


def test_each_kernel_level_check_fails_when_broken(hardened: VmSite):
    """All broken at once (each touches only what its own check reads), one run of the suite, then repaired
    and run again: one run each way keeps the VM tier's share of CI small."""
    folders = hardened.vars["data_at_rest_paths"]
    checks = [check for _, _, check, _ in BREAKS]
    try:
        for _, damage, _, _ in BREAKS:
            hardened.ssh(damage.format(**folders))
        found = kernel_outcomes(outcomes(hardened, *checks))
        assert {what: "failed" in found.get(check, []) for what, _, check, _ in BREAKS} == {
            what: True for what, *_ in BREAKS}, found
    finally:
        for _, _, _, repair in BREAKS:
            hardened.ssh(repair.format(**folders), check=False)
    repaired = kernel_outcomes(outcomes(hardened, *checks))
    assert {check: set(results) for check, results in repaired.items()} == {check: {"passed"} for check in checks}


def test_modprobe_refuses_a_disabled_module(hardened: VmSite):
    """The kit's `install <module> /bin/true` makes a request to load one do nothing, and says so to modprobe."""
    hardened.ssh("modprobe udf; modprobe -n -v udf | grep -q '^install /bin/true'")
    assert "udf" not in hardened.ssh("cut -d' ' -f1 /proc/modules").stdout.split()


def test_the_kits_sysctls_survive_a_reapply_in_boot_order(hardened: VmSite):
    """systemd-sysctl applies every sysctl file in the order of its name, as at boot: what the kit set is still in
    force afterwards (a file of the kit's that sorted before one resetting the same key would lose)."""
    hardened.ssh("systemctl restart systemd-sysctl")
    kernel = hardened.vars["os_baseline_sysctl_kernel"]
    for name, value in kernel.items():
        assert hardened.ssh(f"sysctl -n {name}").stdout.strip() == str(value), name


def test_a_refused_converge_leaves_the_host_reachable_and_its_audit_rules_loaded(hardened: VmSite):
    """A converge that stops midway (here: the model store found off its LUKS volume) still runs the handlers its
    earlier tasks notified (ansible.cfg force_handlers), so the audit rules it rewrote are loaded in the kernel,
    and the operator can still log in, repair and run it again: it passes, and replaces only the evidence of the
    refused state with that of the repaired one."""
    folders = hardened.vars["data_at_rest_paths"]
    hardened.ssh(f"rm /etc/audit/rules.d/50-sovkit.rules && auditctl -D && umount {folders['model_store']}")
    try:
        refused = hardened.converge(*KERNEL_TAGS)
        assert refused.returncode != 0
        assert f"{folders['model_store']} is on" in refused.output and "not on LUKS/dm-crypt" in refused.output
        rules = hardened.ssh("auditctl -l").stdout  # also: the admin still logs in over SSH with sudo
        assert "-k identity" in rules and "-k sovkit-data" in rules
    finally:
        hardened.ssh(f"mount --bind {DATA_MOUNT}/model_store {folders['model_store']}")
    again = hardened.converge(*KERNEL_TAGS)
    assert again.returncode == 0, again.output[-6000:]
    assert again.changed_tasks() == [f"data_at_rest : SOV-DAR-001 | AUDIT | Record the inspection as evidence: {HOST}"]


def test_no_program_runs_from_the_temporary_folders(hardened: VmSite):
    """noexec is in force, not only written: a copy of a program in /tmp, /dev/shm, /var/tmp or /var/log is
    refused by the kernel, while the same program runs from where it was installed."""
    hardened.ssh("/bin/true")
    for folder in ("/tmp", "/dev/shm", "/var/tmp", "/var/log"):
        ran = hardened.ssh(f"cp /bin/true {folder}/sovkit-probe && {folder}/sovkit-probe; rc=$?; "
                           f"rm -f {folder}/sovkit-probe; exit $rc", check=False)
        assert ran.returncode == 126 and "Permission denied" in ran.stderr, (folder, ran.returncode, ran.stderr)


def test_systemd_ip_firewall_is_enforced_for_a_model_servers_sandbox(hardened: VmSite):
    """On cgroup v2 systemd's IP firewall holds: under the model server unit's own IPAddressDeny/IPAddressAllow
    lines (its sandbox's, sovkit/data/sandbox.yaml), a connection to the in-country resolver never leaves (its
    packets are dropped by the unit's cgroup filter), while the same connection without them reaches it. A
    connection abroad, without them, is dropped by the kit's nftables egress policy (its counter grows): both layers
    refuse."""
    assert hardened.ssh("stat -fc %T /sys/fs/cgroup").stdout.strip() == "cgroup2fs"
    ip_lines = [line for line in sandbox.settings("model_server") if line.startswith("IPAddress")]
    assert ip_lines == ["IPAddressDeny=any", "IPAddressAllow=localhost"]
    assert "{{ vllm_service_sandbox" in MODEL_SERVER_UNIT.read_text()  # the unit carries them
    resolver = hardened.vars["residency_time_dns_resolvers"][0]

    def connect(address: str, *properties: str) -> subprocess.CompletedProcess:
        probe = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], 53), timeout=5)\n"
                 "except OSError as e:\n print(type(e).__name__, e.errno); sys.exit(1)")
        props = " ".join(f"-p {shlex.quote(p)}" for p in properties)
        return hardened.ssh(f"systemd-run --quiet --wait --pipe --collect {props} /usr/bin/python3 -c "
                            f"{shlex.quote(probe)} {address}", check=False, timeout=120)

    assert connect(resolver).returncode == 0
    sandboxed = connect(resolver, *ip_lines)
    assert sandboxed.returncode == 1 and sandboxed.stdout.split()[0] in REFUSED, sandboxed
    dropped_before = egress_dropped(hardened)
    hardened.ssh("ip route add 203.0.113.0/24 dev eth0")  # a way abroad, as a misrouted network would give
    try:
        abroad = connect("203.0.113.53")
    finally:
        hardened.ssh("ip route del 203.0.113.0/24 dev eth0")
    assert abroad.returncode == 1 and abroad.stdout.split()[0] in REFUSED, abroad
    assert egress_dropped(hardened) > dropped_before


# How a dropped connection shows: EPERM from the filter at once, or no answer to a SYN that never left.
REFUSED = ("PermissionError", "TimeoutError")


def egress_dropped(site: VmSite) -> int:
    """Packets the kit's nftables egress policy has dropped (its named counter)."""
    out = site.ssh("nft list counter inet sovkit egress_dropped").stdout
    return int(out.split("packets", 1)[1].split()[0])
