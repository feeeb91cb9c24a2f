"""A rehearsal of an RKE2 site runs the rke2 role up to what needs the release: its inputs checked, its files and the
CIS prerequisites written, then it stops (no artifacts on the stand-in mirror, no RKE2 started) and no GPU driver is
installed (no accelerator here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sovkit.config import load_stack
from sovkit.hosts import Podman
from sovkit.rehearse.plan import plan
from sovkit.rehearse.run import Rehearsal, inventory
from sovkit.workspace import SiteWorkspace

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["za-national-dc", "id-sulsel-cloud"])
def test_the_rehearsal_stops_before_the_release_and_the_gpu_driver(name, tmp_path):
    site = load_stack(ROOT / "stacks" / f"Pulumi.{name}.yaml")
    rehearsal = Rehearsal(site, plan(site), SiteWorkspace.of(site.name, tmp_path), Podman(tmp_path / "podman"))
    # the stand-in mirror's signing key (made with gpg in a real rehearsal): only its path is rendered here
    rehearsal.__dict__["archive_key"] = SimpleNamespace(public_armored=tmp_path / "archive-key.asc")
    rendered = inventory(rehearsal)
    variables = rendered["all"]["vars"]
    assert variables["rke2_install_enabled"] is False and variables["rke2_artifacts_enabled"] is False
    assert "rke2_gpu_nodes" not in rendered["all"]["children"]
    assert rendered["all"]["children"]["rke2_servers"]["hosts"] and rendered["all"]["children"]["rke2_agents"]["hosts"]
    # what the role still checks is the site's own
    assert variables["rke2_artifacts_url"].startswith("https://mirror.") and variables["rke2_checksums_sha256"]
