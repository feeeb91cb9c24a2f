"""Each role's Molecule scenario on real Debian 12 hosts: create, prepare, converge, idempotence
(changed=0), verify, destroy. The scenarios share the session's image, apt repository and networks,
and run one after another (they share the test networks' addresses)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
SCENARIOS = sorted(p.parent.parent.parent.name for p in ROLES_DIR.glob("*/molecule/default/molecule.yml"))


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.molecule
@pytest.mark.parametrize("role", SCENARIOS)
def test_role_scenario(role: str, molecule_env: dict[str, str]) -> None:
    """The role converges, re-converges with nothing changed, and its scenario's checks pass."""
    started = time.monotonic()
    proc = subprocess.run(
        ["molecule", "test", "--scenario-name", "default"],
        cwd=ROLES_DIR / role, env=molecule_env, capture_output=True, text=True, timeout=900, check=False,
    )
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        subprocess.run(["molecule", "destroy"], cwd=ROLES_DIR / role, env=molecule_env,
                       capture_output=True, check=False)
    assert proc.returncode == 0, f"molecule test of {role} failed after {elapsed:.0f} s:\n{output[-12000:]}"
    assert "idempotence: Executed: Successful" in output, output[-3000:]
    assert "verify: Executed: Successful" in output, output[-3000:]
    print(f"{role}: molecule test in {elapsed:.0f} s")
