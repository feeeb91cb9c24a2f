"""Time the hardening of fresh local hosts and `sovkit verify` of them (needs root, podman, mmdebstrap).

On the kit's `local` stack with three nodes (one control plane, two CPU workers), each a fresh
Debian 12 host under podman with systemd whose only package source is the stack's mirror:

1. converge of all hardening roles (playbooks/harden.yml) on ONE fresh host   target <= 90 s
2. the idempotent re-run on it, changed=0                                      target <= 30 s
3. `sovkit verify` of that one host (process start included)                  target <= 15 s
4. `sovkit verify` of all three hosts, in parallel (the other two converged first, untimed)
                                                                                target <= 25 s
5. the auditors' scanners on an untouched host and on a hardened one, side by side: Lynis's hardening index
   (copied in from this machine's Debian package `lynis`) and OpenSCAP's pass rates with Debian's SCAP content
   in the profiles "standard" and "ANSSI average" (bench/openscap.py says how the content is adapted to
   Debian 12), over every rule that applies and again without those asking for the other of two choices CIS
   Debian 12 allows or for foreign package sources (openscap.NOT_FOR_THIS_SERVER, each named with why);
   printed, not held to a target
6. the same on a virtual machine with its own kernel (tests/vm/vm_lab.py: qemu, software emulation), where the
   scanners' kernel, audit, time and storage tests see the host itself: converge, re-run, scanners before/after

The image and the local apt repository are built once and cached (~/.cache/sovkit/hosts); their
build is not timed. Holds the lab lock, so it waits for a test session using the machine.

Run: .venv/bin/python bench/bench_harden.py   (apt-get install lynis first for step 5)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "roles"), str(ROOT / "tests" / "vm")]

import openscap  # noqa: E402 - bench/ is on the path as the script's own folder
from harden_lab import converge, local_stack, stack_inventory, start_hosts  # noqa: E402 - after the path insert
from vm_lab import VmSite, vm_lab  # noqa: E402 - after the path insert

from sovkit.hosts import Lab, Podman, default_cache_dir, ensure_apt_repo, ensure_image  # noqa: E402
from sovkit.hosts.vm import build_vm_image  # noqa: E402

TARGETS = {"converge": 90.0, "re-run": 30.0, "verify 1 host": 15.0, "verify 3 hosts": 25.0}


def verify(stack: Path, out: Path, podman: Podman, hosts: list[str]) -> tuple[float, int, str]:
    argv = [sys.executable, "-m", "sovkit.verify.cli", str(stack), "-o", str(out), "--jobs", "3"]
    for host in hosts:
        argv += ["--host", host]
    started = time.monotonic()
    proc = subprocess.run(argv, env=podman.env(), capture_output=True, text=True, check=False, cwd=ROOT)
    return time.monotonic() - started, proc.returncode, proc.stderr


LYNIS_FILES = ("/usr/sbin/lynis", "/usr/share/lynis", "/etc/lynis")  # Debian's package: shell, nothing to build


# scanner -> figures: Lynis (index, warnings, suggestions), OpenSCAP <profile> (passed, failed, rules in the
# profile), OpenSCAP <profile> failed (the failing rules' ids)
Scores = dict[str, tuple]


def scan(run: openscap.Run, put: openscap.Put, have: set[str]) -> Scores:
    """Lynis and OpenSCAP on one host: Lynis's hardening index, warnings and suggestions (from its report file),
    and OpenSCAP's passed, failed and selected rules per profile, with the failing ones named. Lynis only where
    this machine has it."""
    out: Scores = {}
    if shutil.which("lynis"):
        for path in LYNIS_FILES:
            put(Path(path), path)
        run("lynis audit system --quick --no-colors --noplugins >/dev/null 2>&1 || true")
        lines = run("cat /var/log/lynis-report.dat").splitlines()
        report = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
        out["Lynis"] = (int(report["hardening_index"]), sum(line.startswith("warning[]=") for line in lines),
                        sum(line.startswith("suggestion[]=") for line in lines))
    openscap.install_scanner(have, run, put)
    for profile, results in openscap.scores(run, put).items():
        out[f"OpenSCAP {profile}"] = (len(results.get("pass", [])), len(results.get("fail", [])),
                                      sum(map(len, results.values())))
        out[f"OpenSCAP {profile} failed"] = tuple(sorted(results.get("fail", [])))
    return out


def scan_container(podman: Podman, host: str, have: set[str]) -> Scores:
    return scan(lambda command: podman.exec(host, ["sh", "-c", command]),
                lambda source, dest: podman("cp", str(source), f"{host}:{dest}"), have)


def scan_vm(site: VmSite, have: set[str]) -> Scores:
    def put(source: Path, dest: str) -> None:  # a tar of it over SSH, unpacked as root
        folder, name = (source, ".") if source.is_dir() else (source.parent, source.name)
        tar = subprocess.run(["tar", "-C", str(folder), "-cf", "-", name], capture_output=True, check=True).stdout
        target = dest if source.is_dir() else str(Path(dest).parent)
        subprocess.run(site.as_root("sh", "-c", f"mkdir -p {target} && tar -C {target} -xf -"),
                       input=tar, capture_output=True, check=True, timeout=300)
    return scan(lambda command: site.ssh(command, timeout=1800).stdout, put, have)


def vm_part(work: Path, problems: list[str]) -> tuple[dict[str, float], dict[str, Scores]]:
    """Converge, re-run and the scanners before/after on one VM (the VM tier's site, tests/vm)."""
    figures: dict[str, float] = {}
    scores: dict[str, Scores] = {}
    have = build_vm_image().rootfs.installed_packages()
    with vm_lab(work) as site:
        scores["untouched"] = scan_vm(site, have)
        for name in ("converge", "re-run"):
            run = site.converge()
            figures[name] = run.seconds
            if run.returncode != 0 or (name == "re-run" and any(run.changed.values())):
                problems.append(f"VM {name} failed or changed something: {run.changed}\n{run.output[-2000:]}")
        scores["hardened"] = scan_vm(site, have)
    return figures, scores


def score_line(scanner: str, found: Scores) -> str:
    figures = found[scanner]
    if scanner == "Lynis":
        return f"Lynis index {figures[0]} ({figures[1]} warnings, {figures[2]} suggestions)"
    passed, failed, selected = figures
    other_choice = sum(rule in openscap.NOT_FOR_THIS_SERVER for rule in found[f"{scanner} failed"])
    kept = passed + failed - other_choice
    return (f"{scanner} {passed}/{passed + failed} that apply ({100 * passed / max(1, passed + failed):.0f} %), "
            f"{passed}/{selected} of the profile, {passed}/{kept} without the other choices "
            f"({100 * passed / max(1, kept):.0f} %)")


def print_scores(tier: str, scores: dict[str, Scores]) -> None:
    print(f"  scanners ({tier}):")
    other_choices = set()
    for name, found in scores.items():
        print(f"       {name:<10} " + "   ".join(score_line(scanner, found) for scanner in found
                                                if not scanner.endswith(" failed")))
        for scanner, failing in found.items():
            if scanner.endswith(" failed"):
                print(f"         {scanner}: {', '.join(failing) or 'none'}")
                other_choices.update(rule for rule in failing if rule in openscap.NOT_FOR_THIS_SERVER)
    if other_choices:
        print("       failing by choice (CIS Debian 12 allows the kit's choice, or residency forbids the rule's):")
        for why in dict.fromkeys(openscap.NOT_FOR_THIS_SERVER[rule] for rule in sorted(other_choices)):
            rules = sorted(r for r in other_choices if openscap.NOT_FOR_THIS_SERVER[r] == why)
            print(f"         {', '.join(rules)}: {why}")


def print_container_part(figures: dict[str, float], scores: dict[str, Scores]) -> None:
    print("sovkit hardening bench (local stack, fresh Debian 12 podman hosts, 2 cores):")
    for name, target in TARGETS.items():
        value = figures.get(name)
        mark = "ok  " if value is not None and value <= target else "OVER"
        print(f"  {mark} {name:<16} {value if value is not None else float('nan'):6.1f} s   target <= {target:.0f} s")
    if not shutil.which("lynis"):
        print("  Lynis: not installed on this machine (apt-get install lynis): no Lynis figures")
    print_scores("container host; kernel-level tests see this machine's kernel", scores)
    sys.stdout.flush()


def print_vm_part(figures: dict[str, float], scores: dict[str, Scores]) -> None:
    print("  virtual machine (qemu software emulation: times are the emulation's, not a server's):")
    for name, value in figures.items():
        print(f"       {name:<16} {value:6.1f} s")
    print_scores("virtual machine, its own kernel", scores)


def main() -> int:
    podman = Podman(default_cache_dir() / "podman")
    image = ensure_image(podman)
    repo = ensure_apt_repo(image)
    figures: dict[str, float] = {}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sovkit-bench-") as tmp, Lab("sovkit-bench", podman=podman) as lab:
        work = Path(tmp)
        stack = local_stack(work, cpu_workers=2)
        site, inv = stack_inventory(stack)
        hosts = start_hosts(lab, image.tag, repo, site)
        first, others = hosts[0], hosts[1:]
        scores: dict[str, Scores] = {"untouched": scan_container(podman, others[0], image.installed_packages())}

        run = converge(podman, inv, work, "--limit", first)
        figures["converge"] = run.seconds
        if run.returncode != 0:
            print(run.output[-4000:])
            problems.append("converge failed")
        run = converge(podman, inv, work, "--limit", first)
        figures["re-run"] = run.seconds
        if run.returncode != 0 or run.changed != {first: 0}:
            problems.append(f"re-run not idempotent: changed={run.changed}")
        seconds, rc, err = verify(stack, work / "one", podman, [first])
        figures["verify 1 host"] = seconds
        if rc != 0:
            problems.append(f"verify of 1 host exited {rc}:\n{err[-2000:]}")

        run = converge(podman, inv, work, "--limit", ",".join(others))
        if run.returncode != 0:
            problems.append("converge of the other two hosts failed")
        seconds, rc, err = verify(stack, work / "three", podman, [])
        figures["verify 3 hosts"] = seconds
        if rc != 0:
            problems.append(f"verify of 3 hosts exited {rc}:\n{err[-2000:]}")
        scores["hardened"] = scan_container(podman, first, image.installed_packages())
        restored = lab.close()
        print_container_part(figures, scores)
        vm_figures, vm_scores = vm_part(work / "vm", problems)
        print_vm_part(vm_figures, vm_scores)

    print(f"  machine settings restored: {', '.join(restored) or 'nothing to restore'}")
    for problem in problems:
        print(f"  FAIL: {problem}")
    over = [n for n, t in TARGETS.items() if figures.get(n, float("inf")) > t]
    return 1 if problems or over else 0


if __name__ == "__main__":
    sys.exit(main())
