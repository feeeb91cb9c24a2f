"""The one converge pipeline, up to the play: what it makes and checks on this machine before any host is touched,
and what it hands ansible-playbook (run for real with --list-hosts, which reaches no host)."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from sovkit import converge
from sovkit.config import load_stack
from sovkit.converge import ConvergeError
from sovkit.render.inventory import render_inventory
from sovkit.workspace import SiteWorkspace

ROOT = Path(__file__).resolve().parents[2]
BRAZIL = load_stack(ROOT / "stacks" / "Pulumi.br-ministerio-cpu.yaml")
PUNE = load_stack(ROOT / "stacks" / "Pulumi.in-mh-pune.yaml")
ZA = load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")


@pytest.fixture
def workspace(tmp_path: Path) -> SiteWorkspace:
    return SiteWorkspace("br-ministerio-cpu", tmp_path)


def test_tenant_keys_are_hashed_from_pulumi_or_their_file_and_short_ones_refused(tmp_path: Path):
    key = "k" * 40
    assert converge.tenant_key_hashes(BRAZIL, {"atendimento": key}) == {
        "atendimento": hashlib.sha256(key.encode()).hexdigest()}
    with pytest.raises(ConvergeError, match=r"/etc/sovkit/keys/atendimento\.key, which cannot be read"):
        converge.tenant_key_hashes(BRAZIL, {})
    with pytest.raises(ConvergeError, match=r"5 characters; allowed: 32 characters or more\. Nothing was changed"):
        converge.tenant_key_hashes(BRAZIL, {"atendimento": "short"})
    with pytest.raises(ConvergeError, match="tenantKeyHealth, which SOVKIT_TENANT_KEYS does not hold"):
        converge.tenant_key_hashes(ZA, {"home-affairs": key})


def test_the_gateways_key_is_made_once_and_kept_private(workspace: SiteWorkspace):
    first = converge.upstream_key(workspace)
    assert len(first) == converge.UPSTREAM_KEY_LENGTH and converge.upstream_key(workspace) == first
    path = workspace.secrets / "upstream-api-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_inventory_without_the_runtime_lock_is_refused_before_the_play(workspace: SiteWorkspace):
    """A hosts-mode inventory whose runtime pins are missing (hand-edited, or a vendor with no lock) is refused
    before anything is written: the play could not install the runtime from the wheelhouse alone."""
    inventory = render_inventory(PUNE)
    inventory["all"]["vars"]["vllm_service_requirements"] = []
    with pytest.raises(ConvergeError, match=r"serving on nvidia in hosts mode: found no pins.*Nothing was changed"):
        converge.converge(PUNE, inventory=inventory, workspace=SiteWorkspace(PUNE.name, workspace.root),
                          pulumi_keys={})
    assert not (workspace.root / ".sovkit").exists()  # nothing was written either


def test_a_machine_outside_the_admin_networks_is_refused_before_the_play(workspace: SiteWorkspace):
    """Loading the firewall would cut this machine's SSH session: the converge says so and touches nothing."""
    inventory = render_inventory(BRAZIL, addresses={"bsb-cpu-01": "127.0.0.2", "bsb-cpu-02": "127.0.0.3"})
    keys = {"atendimento": "k" * 40}
    with pytest.raises(ConvergeError, match=r"reaches bsb-cpu-0\d \(127.0.0.\d\) from 127.0.0.1; allowed: an address "
                                            r"inside the admin networks"):
        converge.converge(BRAZIL, inventory=inventory, workspace=workspace, pulumi_keys=keys)
    assert not workspace.inventory.exists()


def test_the_play_gets_the_rendered_inventory_and_its_secrets_as_data(workspace: SiteWorkspace):
    """Run up to ansible-playbook itself (--list-hosts reaches no host): the inventory as rendered, and a 0600
    variables file whose every string is `!unsafe` (the chart's alert rules carry Prometheus's own templates)."""
    keys = {"atendimento": "k" * 40}
    result = converge.converge(BRAZIL, workspace=workspace, pulumi_keys=keys, in_lab=lambda argv: argv,
                               extra_args=["--list-hosts"])
    assert result.returncode == 0 and "bsb-cpu-01" in result.output
    assert yaml.safe_load(workspace.inventory.read_text()) == render_inventory(BRAZIL, workspace=workspace)
    variables_file = workspace.secrets / "play-variables.yml"
    assert stat.S_IMODE(variables_file.stat().st_mode) == 0o600
    text = variables_file.read_text()
    assert re.search(r"!unsafe ['\"][^\n]*\{\{ \$labels", text), text[:2000]
    loaded = yaml.load(text, Loader=_AnsibleLikeLoader)
    assert loaded["gateway_tenant_key_hashes"] == {"atendimento": hashlib.sha256(keys["atendimento"].encode())
                                                   .hexdigest()}
    assert loaded["gateway_upstream_api_key"] == loaded["vllm_service_api_key"] == converge.upstream_key(workspace)
    assert loaded["monitoring_alert_rule_groups"] and loaded["monitoring_namespace_label"]
    assert keys["atendimento"] not in text and keys["atendimento"] not in result.output


def test_pulumi_hands_the_inventory_it_rendered(workspace: SiteWorkspace, monkeypatch: pytest.MonkeyPatch):
    """`python -m sovkit.converge SITE` (what HostConfiguration runs) takes the inventory from SOVKIT_INVENTORY."""
    given = render_inventory(BRAZIL, addresses={"bsb-cpu-01": "192.0.2.21", "bsb-cpu-02": "192.0.2.22"})
    seen: dict = {}
    monkeypatch.setattr(converge, "converge", lambda site, **kw: seen.update(site=site, **kw) or _Done())
    monkeypatch.setenv(converge.INVENTORY_ENV, yaml.safe_dump(given))
    monkeypatch.setenv(converge.TENANT_KEYS_ENV, '{"atendimento": "' + "p" * 40 + '"}')
    assert converge.main(["br-ministerio-cpu"]) == 0
    assert seen["site"].name == "br-ministerio-cpu" and seen["inventory"] == given
    assert seen["pulumi_keys"] == {"atendimento": "p" * 40}
    assert converge.main([]) == 2


def test_pulumi_hands_the_etcd_snapshot_credentials_it_read(monkeypatch: pytest.MonkeyPatch):
    """An RKE2 site's etcd snapshot store credentials come from SOVKIT_ETCD_SNAPSHOT_CREDENTIALS (Pulumi's secrets)."""
    seen: dict = {}
    monkeypatch.setattr(converge, "converge", lambda site, **kw: seen.update(site=site, **kw) or _Done())
    monkeypatch.setenv(converge.ETCD_CREDENTIALS_ENV, '{"accessKeyId": "k1", "secretAccessKey": "s1"}')
    monkeypatch.delenv(converge.TENANT_KEYS_ENV, raising=False)
    monkeypatch.delenv(converge.INVENTORY_ENV, raising=False)
    assert converge.main(["za-national-dc"]) == 0
    assert seen["etcd_credentials"] == {"accessKeyId": "k1", "secretAccessKey": "s1"}


class _Done:
    seconds = 1.0
    changed: dict = {}  # noqa: RUF012 - a stand-in result, read once
    log = Path(os.devnull)
    gate = None


class _AnsibleLikeLoader(yaml.SafeLoader):
    """Reads Ansible's `!unsafe` tag as a plain string, as Ansible does (without templating it)."""


_AnsibleLikeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def test_the_local_site_converges_without_mitogen_and_every_other_site_with_it():
    """On `local` mitogen would drive only the site CA's tasks on this machine, and its local Python stalls there
    while the model servers beside it are busy: a re-run under load must not wait on them."""
    local = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    assert converge.play_strategy(local) == {}
    for site in (BRAZIL, PUNE, ZA):
        assert converge.play_strategy(site)["ANSIBLE_STRATEGY"] == "mitogen_linear"


def test_a_handler_that_changed_is_named_as_itself_not_as_the_task_before_it():
    output = ("TASK [gateway : Write the tenants] ***\nchanged: [gw-1]\n\nTASK [gateway : Start nginx] ***\n"
              "ok: [gw-1]\n\nRUNNING HANDLER [gateway : Reload nginx] ***\nchanged: [gw-1]\n")
    assert converge.PlayRun(0, 1.0, output).changed_tasks() == ["gateway : Write the tenants: gw-1",
                                                                 "gateway : Reload nginx: gw-1"]
