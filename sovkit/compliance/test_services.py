"""The services the kit runs on a host (the gateway, the model servers, monitoring): each sandboxed (SOV-SRV-*)."""

from __future__ import annotations

import re
import shlex

import pytest

# What each check covers; the units a host runs come from its inventory (sandbox_units), as the play was given them.
SERVICES = {"gateway": r"nginx\.service", "model servers": r"sovkit-vllm-.+\.service",
            "Prometheus": r"prometheus\.service", "node exporter": r"prometheus-node-exporter\.service",
            "GPU exporter": r"sovkit-gpu-exporter\.service"}
# Not counted: cgroup v1 hosts do not enforce them (egress is nftables' job), yet systemd-analyze credits them.
NOT_COUNTED = ("IPAddressAllow=", "IPAddressDeny=")


def exposure(host, unit: str, text: str) -> tuple[float, str]:
    """`systemd-analyze security` of the unit as it runs (`text`: `systemctl cat`, drop-ins included), without the
    NOT_COUNTED settings: (the overall exposure, what it found exposed)."""
    kept = "\n".join(line for line in text.splitlines() if not line.startswith(NOT_COUNTED))
    folder = host.check_output("mktemp -d")
    try:
        path = f"{folder}/{unit}"
        host.check_output(f"printf '%s\\n' {shlex.quote(kept)} > {shlex.quote(path)}")
        report = host.run(f"systemd-analyze security --offline=yes --no-pager {shlex.quote(path)}")
    finally:
        host.run(f"rm -rf {shlex.quote(folder)}")
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report.stdout)
    assert found, f"systemd-analyze security of {unit} gave no exposure: {report.stdout[-500:]}{report.stderr[-500:]}"
    exposed = [line.split()[1] for line in report.stdout.splitlines() if line.startswith("✗")]
    return float(found.group(1)), ", ".join(exposed)


@pytest.mark.control("SOV-SRV-001")
@pytest.mark.parametrize("service", SERVICES)
def test_service_is_sandboxed(host, site, evidence, service: str):
    """A service that faces the network or holds keys (nginx holds the TLS key and the tenants' key hashes) is
    confined by systemd: `systemd-analyze security` rates each unit at most the kit's limit, without crediting
    the IP firewall where the host cannot enforce it."""
    units = [u for u in site["sandbox_units"] if re.fullmatch(SERVICES[service], u)]
    if not units:
        pytest.skip(f"no {service} runs on this host")
    shown = {u: host.run(f"systemctl cat {shlex.quote(u)}") for u in units}
    installed = {u: cat.stdout for u, cat in shown.items() if cat.rc == 0}
    if not installed:  # a converge of the hardening play alone, say: nothing of it runs to be confined
        pytest.skip(f"the {service} ({', '.join(units)}) is not installed on this host")
    measured = {unit: exposure(host, unit, text) for unit, text in installed.items()}
    evidence({**{unit: f"{level} (exposed: {what})" for unit, (level, what) in measured.items()},
              **{unit: "not installed" for unit in units if unit not in installed}})
    over = {unit: level for unit, (level, _) in measured.items() if level > site["sandbox_max_exposure"]}
    assert not over, f"exposure over {site['sandbox_max_exposure']}: {over}"
