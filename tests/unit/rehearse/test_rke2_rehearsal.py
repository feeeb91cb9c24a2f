"""A rehearsal of an RKE2 site runs the rke2 role up to what needs the release: its inputs checked, its files and the
CIS prerequisites written, then it stops (no artifacts on the stand-in mirror, no RKE2 started) and no GPU driver is
installed (no accelerator here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sovkit.config import load_stack
from sovkit.converge import play_variables
from sovkit.hosts import Podman
from sovkit.rehearse.plan import plan
from sovkit.rehearse.run import Rehearsal, etcd_snapshot_credentials, inventory
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


@pytest.mark.parametrize("name", ["za-national-dc", "id-sulsel-cloud"])
def test_the_rehearsal_supplies_the_etcd_snapshot_credentials_the_site_names_as_pulumi_secrets(name, tmp_path):
    """The site's etcdSnapshotCredentials are Pulumi secrets, which a rehearsal does not have: it makes its own, once,
    and the converge writes them to the servers' environment file as on the site (and the same again on the second
    converge); the plan says so."""
    site = load_stack(ROOT / "stacks" / f"Pulumi.{name}.yaml")
    rehearsal = Rehearsal(site, plan(site), SiteWorkspace.of(site.name, tmp_path), Podman(tmp_path / "podman"))
    given = etcd_snapshot_credentials(rehearsal)
    assert set(given) == {"accessKeyId", "secretAccessKey"} and given == etcd_snapshot_credentials(rehearsal)
    for path in (rehearsal.folder / "keys").glob("etcd-snapshot-*"):
        assert path.stat().st_mode & 0o777 == 0o600
    variables = play_variables(site, rehearsal.workspace, {}, given)
    assert variables["rke2_server_environment"] == (f"AWS_ACCESS_KEY_ID={given['accessKeyId']}\n"
                                                    f"AWS_SECRET_ACCESS_KEY={given['secretAccessKey']}\n")
    assert "etcd snapshot credentials" in {s.what for s in rehearsal.plan.substitutions}


def test_a_rehearsal_of_a_site_without_s3_snapshots_makes_no_credentials(tmp_path):
    site = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
    rehearsal = Rehearsal(site, plan(site), SiteWorkspace.of(site.name, tmp_path), Podman(tmp_path / "podman"))
    assert etcd_snapshot_credentials(rehearsal) == {}
    assert "etcd snapshot credentials" not in {s.what for s in rehearsal.plan.substitutions}
