"""Every shipped site but `local` (whose rehearsal is `sovkit up`, in test_local_up.py) rehearsed for real, as an
integrator would before touching hardware: `sovkit rehearse SITE` hardens and verifies every host over SSH with
the site's own names, addresses, login user and port, then converges every host again, which must change nothing; a
hosts-mode site serves its own models to its own tenants through the gateway and Prometheus scrapes them; a
kubernetes-mode site's node firewall admits, live, exactly what the cluster needs. `--down` leaves this machine as
it was.

The sites come from stacks/: a fork's new site is rehearsed here without a line of this file changing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.hosts import MachineSnapshot
from sovkit.stacks import stack_files
from sovkit.workspace import SiteWorkspace

ROOT = Path(__file__).resolve().parents[2]
SITES = sorted(s.name for s in (load_stack(p) for p in stack_files(ROOT)) if s.infrastructure.provider != "local")

pytestmark = [pytest.mark.hosts, pytest.mark.slow]


def sovkit(*args: str, timeout: float = 2400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sovkit", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def record(site: str) -> dict:
    return json.loads((SiteWorkspace.of(site, ROOT).rehearsal / "record.json").read_text())


@pytest.mark.parametrize("site", SITES)
def test_the_site_rehearses_with_no_check_failed_and_nothing_left_to_change_and_goes(site: str) -> None:
    spec = load_stack(ROOT / "stacks" / f"Pulumi.{site}.yaml")
    before = MachineSnapshot.capture()
    try:
        first = sovkit("rehearse", site)
        assert first.returncode == 0, f"sovkit rehearse {site}:\n{first.stdout[-8000:]}\n{first.stderr[-4000:]}"
        done = record(site)
        assert done["checks_passed"] and not done["failures"], done
        assert done["verdict"] in ("COMPLIANT", "NOT FULLY EVIDENCED"), done["verdict_headline"]
        assert f"({done['verdict_headline']})" in first.stdout  # the honest verdict is printed, not "compliant"
        assert sorted(h["name"] for h in done["hosts"]) == sorted(n.name for n in spec.nodes)
        assert {(h["login"], h["ssh_port"]) for h in done["hosts"]} == {(n.ssh_user, n.ssh_port) for n in spec.nodes}
        for line in done["substitutions"]:
            assert line in first.stdout  # every substitution is printed, not only recorded
        if spec.platform.mode == "hosts":
            for model in spec.serving.models:
                assert any(line.startswith(f"gateway: {model} as ") and "-> 200" in line for line in done["checks"])
            assert any(line.startswith("Prometheus:") and "down: none" in line for line in done["checks"])
            if spec.accelerator.accelerator != "cpu":  # each model server holds its own GPUs, as placed
                for model in spec.serving.models:
                    assert any(line.startswith(f"devices: {model} on ") for line in done["checks"]), done["checks"]
        else:
            probes = done["checks"][0]
            assert "node firewall:" in probes and probes.endswith("0 otherwise"), probes
        # the rehearsal converged a second time, as Molecule's idempotence step does: nothing was left to change
        assert done["changed_again"] == dict.fromkeys(done["changed"], 0) and all(done["changed"].values()), done
        assert "converge again" in done["seconds"]
    finally:
        down = sovkit("rehearse", site, "--down", timeout=600)
        assert down.returncode == 0, down.stdout + down.stderr
    assert before.changes() == []
