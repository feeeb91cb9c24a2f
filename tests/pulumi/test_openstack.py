"""OpenStack servers people can log into, with their encrypted data volume in use: the whole program under mocks,
for the shipped OpenStack site (kubernetes mode) and an edited hosts-mode variant of it that also takes a floating
IP from a pool.

The key file the stack names is the harness's test key (sovkit.infra.testing.fake_key_file), read by the program
as it reads the operators' file on their machine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pulumi_helpers import openstack_in_hosts_mode

from sovkit.config import SiteConfig, load_stack
from sovkit.config.schema import PROJECT
from sovkit.infra.nodes import DATA_VOLUME_VAR, METADATA_CIDR, METADATA_PORT
from sovkit.infra.testing import (
    FAKE_SSH_PUBLIC_KEY,
    ROOT,
    RecordingMocks,
    Run,
    fake_key_file,
    mock_image_id,
    run_program,
    stack_environment,
)
from sovkit.render.cloud_init import DATA_MOUNT, UserData, data_volume_device, render_user_data
from sovkit.render.inventory import DATA_PATHS

STACK = "id-sulsel-cloud"
STACK_FILE = ROOT / "stacks" / f"Pulumi.{STACK}.yaml"
INSTANCE = "openstack:compute/instance:Instance"
KEYPAIR = "openstack:compute/keypair:Keypair"
RULE = "openstack:networking/secGroupRule:SecGroupRule"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"
POOL = "mks-public"
LOGIN_USER = "sovkit-ops"


@dataclass
class Variant:
    name: str
    site: SiteConfig
    run: Run


def hosts_mode_config() -> tuple[dict[str, str], list[str]]:
    """The shipped site in hosts mode (its GPU workers only, no RKE2), its gateway on a floating IP from a pool,
    its servers from an image whose login user is not Debian's default."""
    config, secret_keys, _ = stack_environment(STACK_FILE)
    config = openstack_in_hosts_mode(config)
    groups = json.loads(config.pop(f"{PROJECT}:openstackNodeGroups"))
    groups["gpu_worker"]["loginUser"] = LOGIN_USER  # an image whose cloud-init user is not `debian`
    config |= {f"{PROJECT}:openstackNodeGroups": json.dumps(groups),
               f"{PROJECT}:openstackFloatingIp": "true", f"{PROJECT}:openstackFloatingIpPool": POOL}
    return config, secret_keys


_HOSTS: list[Variant] = []


@pytest.fixture(params=["shipped", "hosts"])
def variant(request, run_of, body_with) -> Variant:
    """The shipped OpenStack site, or its hosts-mode variant (run once per session, through the same program)."""
    if request.param == "shipped":
        shipped = run_of(STACK)
        return Variant("shipped", shipped.site, shipped.run)
    if not _HOSTS:
        config, secret_keys = hosts_mode_config()
        run = run_program(STACK, body_with(), config=config, secret_keys=secret_keys)
        _HOSTS.append(Variant("hosts", run.result.site, run))  # the site as the program read it
    return _HOSTS[0]


def servers(variant: Variant) -> list:
    found = variant.run.mocks.of_type(INSTANCE)
    assert sorted(s.name for s in found) == sorted(n.name for n in variant.site.nodes)
    return found


def login_user(site: SiteConfig, node: str) -> str:
    role = next(n.role for n in site.nodes if n.name == node)
    return site.infrastructure.openstack_node_groups[role].login_user


def test_the_variants_are_what_they_claim(variant):
    assert variant.site.platform.mode == ("kubernetes" if variant.name == "shipped" else "hosts")
    assert variant.run.outputs["site"]["mode"] == variant.site.platform.mode
    users = {login_user(variant.site, n.name) for n in variant.site.nodes}
    assert users == ({"debian"} if variant.name == "shipped" else {LOGIN_USER})
    inventory = yaml.safe_load(variant.run.outputs["inventory"])
    hosts = {h: v for g in inventory["all"]["children"].values() for h, v in g["hosts"].items() if "sovkit_role" in v}
    assert {v["ansible_user"] for v in hosts.values()} == users  # Ansible logs in as the image's login user


def test_key_pair_holds_the_key_file_and_every_server_names_it(variant):
    """One key pair, made from the key file's content (read when the program runs), in the site's region; every
    server is created with it."""
    pairs = variant.run.mocks.of_type(KEYPAIR)
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair.plain("publicKey") == fake_key_file().read_text(encoding="utf-8").strip() == FAKE_SSH_PUBLIC_KEY
    assert pair.plain("region") == variant.site.infrastructure.openstack_region
    for server in servers(variant):
        assert server.plain("keyPair") == pair.plain("name"), server.name


def test_every_server_user_data_gives_the_login_user_the_key_and_mounts_the_data_volume(variant):
    """Each server's cloud-init user data: the node group's login user takes the site key; the server's own data
    volume, by its stable virtio path, becomes ext4 and is mounted at /srv/sovkit with nodev,nosuid,nofail, so the
    model store lives on it; nothing at first boot updates packages or writes apt sources."""
    volumes = variant.run.outputs["dataVolumes"]
    for server in servers(variant):
        text = server.plain("userData")
        assert text.startswith("#cloud-config\n"), server.name
        document = yaml.safe_load(text)
        user = login_user(variant.site, server.name)
        assert document["user"] == {"name": user, "ssh_authorized_keys": [FAKE_SSH_PUBLIC_KEY]}
        volume_id = volumes[server.name]["volume_id"]
        device = f"/dev/disk/by-id/virtio-{volume_id[:20]}"
        [fs] = document["fs_setup"]
        assert (fs["device"], fs["filesystem"], fs["label"], fs["overwrite"]) == (device, "ext4", "sovkit-data", False)
        [mount] = document["mounts"]
        assert mount[:3] == [device, "/srv/sovkit", "ext4"]
        assert {"nodev", "nosuid", "nofail"} <= set(mount[3].split(","))
        assert DATA_PATHS["model_store"].startswith(mount[1] + "/")
        assert document["package_update"] is False and document["package_upgrade"] is False
        assert document["apt"] == {"preserve_sources_list": True}
        assert text == render_user_data(UserData(user, FAKE_SSH_PUBLIC_KEY, volume_id,
                                                 f"sovkit {variant.site.name} {server.name}"))
        for secret in variant.run.secret_values.values():
            assert secret not in text


def test_data_volume_is_attached_at_boot_from_the_looked_up_image(variant):
    """The encrypted volume is in the server's block device mapping (there when cloud-init first runs), kept when
    the server goes; the root disk is the stack's image, looked up by name in the site's region."""
    volumes = variant.run.outputs["dataVolumes"]
    for server in servers(variant):
        role = next(n.role for n in variant.site.nodes if n.name == server.name)
        image = mock_image_id(variant.site.infrastructure.openstack_node_groups[role].image)
        assert server.plain("imageId") == image
        root, data = server.plain("blockDevices")
        assert root == {"uuid": image, "sourceType": "image", "destinationType": "local", "bootIndex": 0,
                        "deleteOnTermination": True}
        assert data == {"uuid": volumes[server.name]["volume_id"], "sourceType": "volume",
                        "destinationType": "volume", "bootIndex": -1, "deleteOnTermination": False}
    lookups = [args for token, args in variant.run.mocks.calls if token == "openstack:images/getImage:getImage"]
    images = {g.image for g in variant.site.infrastructure.openstack_node_groups.values()}
    assert sorted(a["name"] for a in lookups) == sorted(images)  # once per image
    assert {a["region"] for a in lookups} == {variant.site.infrastructure.openstack_region}


def test_metadata_egress_rule_exists(variant):
    """cloud-init reaches the metadata service at first boot: one egress rule, TCP 80 to 169.254.169.254/32."""
    rules = [r for r in variant.run.mocks.of_type(RULE) if r.plain("remoteIpPrefix") == METADATA_CIDR]
    assert len(rules) == 1
    assert {k: rules[0].plain(k) for k in ("direction", "ethertype", "protocol", "portRangeMin", "portRangeMax")} == {
        "direction": "egress", "ethertype": "IPv4", "protocol": "tcp", "portRangeMin": METADATA_PORT,
        "portRangeMax": METADATA_PORT}
    assert METADATA_PORT == 80


def test_floating_ip_comes_from_the_stack_pool(variant):
    floating = variant.run.mocks.of_type(FLOATING_IP)
    if variant.name == "shipped":
        assert not variant.site.infrastructure.openstack_floating_ip
        assert floating == []
        return
    assert [f.plain("pool") for f in floating] == [POOL]


def test_encryption_evidence_per_node_in_outputs_and_in_the_play_inventory(variant):
    """Per node: the volume id, the volume type the created volume has, and that encryption is that Cinder volume
    type's; the same as the stack output and as `sovkit_data_volume` of the host in the inventory the play gets."""
    site = variant.site
    volume_type = site.infrastructure.openstack_volume_type
    evidence = variant.run.outputs["dataVolumes"]
    assert set(evidence) == {n.name for n in site.nodes}
    volumes = {r.name: r for r in variant.run.mocks.of_type("openstack:blockstorage/volume:Volume")}
    for node, facts in evidence.items():
        assert facts == {"device": data_volume_device(facts["volume_id"]), "mount": DATA_MOUNT,
                         "volume_id": facts["volume_id"], "volume_type": volume_type,
                         "encrypted_by": f"cinder volume type {volume_type}"}
        assert volumes[f"{node}-data"].plain("volumeType") == volume_type
    assert len({f["volume_id"] for f in evidence.values()}) == len(evidence)
    assert len({f["device"] for f in evidence.values()}) == len(evidence)
    play = variant.run.mocks.named(f"{site.name}-site-play")
    inventory = yaml.safe_load(play.plain("environment")["SOVKIT_INVENTORY"])
    hosts = {h: v for g in inventory["all"]["children"].values() for h, v in g["hosts"].items() if "sovkit_role" in v}
    assert {h: v[DATA_VOLUME_VAR] for h, v in hosts.items()} == evidence


# --- the key file -----------------------------------------------------------------------------------------------


def _bad_key(tmp_path: Path, case: str) -> tuple[Path, str]:
    """(key file, words the message must carry about what was found)."""
    path = tmp_path / "operators.pub"
    if case == "missing":
        return path, "cannot be read (No such file or directory)"
    if case == "directory":
        path.mkdir()
        return path, "cannot be read (Is a directory)"
    if case == "private-key":
        path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                        "-----END OPENSSH PRIVATE KEY-----\n")
        return path, "a private key"
    if case == "two-keys":
        path.write_text(f"{FAKE_SSH_PUBLIC_KEY}\n{FAKE_SSH_PUBLIC_KEY}\n")
        return path, "2 keys"
    if case == "dsa":
        path.write_text("ssh-dss AAAAB3NzaC1kc3MAAACBAP operator@x\n")
        return path, "not a supported key type"
    path.write_text("ssh-ed25519 not-base64!! operator@x\n")
    return path, "not valid base64"


@pytest.mark.parametrize("case", ["missing", "directory", "private-key", "two-keys", "dsa", "garbage"])
@pytest.mark.parametrize("mode", ["shipped", "hosts"])
def test_unusable_key_file_stops_the_program_before_any_resource(tmp_path, case, mode):
    path, found = _bad_key(tmp_path, case)
    if mode == "shipped":
        config, secret_keys, _ = stack_environment(STACK_FILE)
    else:
        config, secret_keys = hosts_mode_config()
    config[f"{PROJECT}:openstackSshPublicKey"] = str(path)
    mocks = RecordingMocks()
    with pytest.raises(Exception) as stopped:
        run_program(STACK, config=config, secret_keys=secret_keys, mocks=mocks)
    message = str(stopped.value)
    assert f"stacks/Pulumi.{STACK}.yaml" in message
    assert f"{PROJECT}:openstackSshPublicKey" in message
    assert f"found:   {path}, which " in message and found in message, message
    assert "allowed: one OpenSSH public key line" in message and "ssh-ed25519" in message
    assert "nothing was changed" in message
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in message  # never echoes key material
    assert mocks.resources == []


def test_the_shipped_site_loads_as_the_program_sees_it():
    """The shipped stack names its key by a path on the operators' machine; the harness swaps in its test key."""
    assert load_stack(STACK_FILE).infrastructure.openstack_ssh_public_key == "/etc/sovkit/keys/pdn-makassar-ops.pub"
    config, _, _ = stack_environment(STACK_FILE)
    assert config[f"{PROJECT}:openstackSshPublicKey"] == str(fake_key_file())
