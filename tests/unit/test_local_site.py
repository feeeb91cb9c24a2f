"""`sovkit up/down` refuse what is not theirs before touching anything; tenant keys are made once, private."""

import stat
from pathlib import Path

import pytest

from sovkit.cli import run
from sovkit.config import load_stack
from sovkit.local.up import LocalSite, ensure_tenant_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def in_project(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("command", ["up", "down"])
def test_a_real_site_is_refused_with_the_way_to_run_it(command, capsys):
    assert run([command, "--stack", "za-national-dc"]) == 1
    err = capsys.readouterr().err
    assert "Pulumi.za-national-dc.yaml" in err and "provider is 'onprem'" in err, err
    assert "pulumi up" in err and "Nothing was changed" in err, err


def test_tenant_keys_are_made_once_and_private(tmp_path: Path):
    text = (ROOT / "stacks" / "Pulumi.local.yaml").read_text()
    assert "/var/lib/sovkit/local/keys/" in text
    stack = tmp_path / "Pulumi.local.yaml"
    stack.write_text(text.replace("/var/lib/sovkit/local/keys/", f"{tmp_path}/keys/"))
    site = load_stack(stack)
    made = ensure_tenant_keys(site)
    assert sorted(p.name for p in made) == sorted(f"{name}.key" for name in site.serving.tenants)
    keys = {p.name: p.read_text() for p in made}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in made)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert len(set(keys.values())) == len(keys) and all(len(k.strip()) >= 40 for k in keys.values())
    assert ensure_tenant_keys(site) == []  # a re-run keeps every key
    assert {p.name: p.read_text() for p in made} == keys


def test_the_local_site_derives_its_names_from_the_stack():
    local = LocalSite(load_stack(ROOT / "stacks" / "Pulumi.local.yaml"))
    assert local.network.name == "sovkit-local" and local.network.subnet == "198.18.0.0/24"
    assert local.state_dir == ROOT / ".sovkit" / "local"
    assert local.serving_address == "198.18.0.11"
