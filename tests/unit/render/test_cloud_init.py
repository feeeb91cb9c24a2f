"""cloud-init user data of an OpenStack server and its data volume evidence: pure functions, no cloud."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.render.cloud_init import (
    DATA_LABEL,
    DATA_MOUNT,
    KEY_TYPES,
    PublicKeyError,
    UserData,
    data_volume_device,
    data_volume_facts,
    parse_public_key,
    render_user_data,
    user_data_document,
)
from sovkit.render.inventory import DATA_PATHS

ROOT = Path(__file__).resolve().parents[3]
OPENSTACK_STACK = ROOT / "stacks" / "Pulumi.id-sulsel-cloud.yaml"
VOLUME_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def public_key(key_type: str = "ssh-ed25519", comment: str = "ops@makassar", embedded: str | None = None,
               body: bytes = bytes(range(32))) -> str:
    name = (embedded or key_type).encode()
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", len(body)) + body
    return f"{key_type} {base64.b64encode(blob).decode()} {comment}".strip()


KEY = public_key()


def document(**changes) -> dict:
    return yaml.safe_load(render_user_data(UserData(**{"login_user": "debian", "public_key": KEY,
                                                       "volume_id": VOLUME_ID, **changes})))


# --- the public key ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_accepts_one_key_of_each_supported_type(key_type):
    key = public_key(key_type)
    assert parse_public_key(f"# the operations team\n\n  {key}  \n") == key


def test_key_without_comment_and_extra_spaces_is_normalised():
    key = public_key(comment="")
    assert parse_public_key(key.replace(" ", "   ") + "\n") == key


@pytest.mark.parametrize(("text", "found"), [
    ("", "an empty file"),
    ("# only a comment\n", "an empty file"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n",
     "a private key (-----BEGIN OPENSSH PRIVATE KEY-----)"),
    (f"{KEY}\n{KEY}\n", "2 keys"),
    (public_key("ssh-dss"), "a line starting 'ssh-dss', not a supported key type"),
    ("ssh-ed25519\n", "a ssh-ed25519 line with no key after the type"),
    ("ssh-ed25519 %%%not-base64 x\n", "not valid base64"),
    (public_key("ssh-ed25519", embedded="ssh-rsa"), "of type 'ssh-rsa' or cut short"),
    ("ssh-ed25519 " + base64.b64encode(struct.pack(">I", 11) + b"ssh-ed25519").decode(), "cut short"),
    ("ecdsa-sha2-nistp256 AAAA", "not valid base64 OpenSSH key data"),
])
def test_refuses_what_is_not_one_public_key(text, found):
    with pytest.raises(PublicKeyError) as refused:
        parse_public_key(text)
    assert found in refused.value.found
    assert refused.value.allowed.startswith("one OpenSSH public key line")
    assert "b3BlbnNzaC1rZXktdjE" not in str(refused.value)  # key material is never echoed


# --- the data volume ----------------------------------------------------------------------------------------------


def test_data_volume_device_is_the_virtio_serial_path():
    """Nova sets the volume id as the disk serial; virtio-blk keeps its first 20 characters."""
    assert data_volume_device(VOLUME_ID) == "/dev/disk/by-id/virtio-0f1e2d3c-4b5a-6978-8"
    assert len(data_volume_device(VOLUME_ID).rsplit("virtio-", 1)[1]) == 20


def test_data_volume_facts_are_the_evidence():
    assert data_volume_facts(VOLUME_ID, "luks-ssd") == {
        "device": "/dev/disk/by-id/virtio-0f1e2d3c-4b5a-6978-8", "mount": "/srv/sovkit", "volume_id": VOLUME_ID,
        "volume_type": "luks-ssd", "encrypted_by": "cinder volume type luks-ssd"}


def test_the_model_store_lives_on_the_data_volume():
    assert DATA_PATHS["model_store"].startswith(DATA_MOUNT + "/")


# --- the user data ------------------------------------------------------------------------------------------------


def test_user_data_is_cloud_config_yaml_and_deterministic():
    data = UserData("debian", KEY, VOLUME_ID, "sovkit id-sulsel-cloud node-1")
    text = render_user_data(data)
    assert text.startswith("#cloud-config\n# sovkit id-sulsel-cloud node-1: ")
    assert text == render_user_data(data)
    assert yaml.safe_load(text) == user_data_document(data)


def test_login_user_takes_the_key():
    """`user:` renames cloud-init's default user and keeps the rest of the image's definition of it (Debian's:
    passwordless sudo), and the key is that user's."""
    assert document(login_user="admin")["user"] == {"name": "admin", "ssh_authorized_keys": [KEY]}
    assert "users" not in document()  # a `users` list without `default` would drop the image's sudo rule


def test_data_volume_formatted_once_and_mounted():
    doc = document()
    device = data_volume_device(VOLUME_ID)
    assert doc["fs_setup"] == [{"label": DATA_LABEL, "filesystem": "ext4", "device": device, "partition": "auto",
                                "overwrite": False}]
    assert doc["mounts"] == [[device, "/srv/sovkit", "ext4", "defaults,nodev,nosuid,nofail", "0", "2"]]
    assert "disk_setup" not in doc  # a whole-disk file system: no partition table to write


FIRST_BOOT_NETWORK = ("packages", "apt_sources", "phone_home", "ntp", "snap", "landscape", "ubuntu_advantage",
                      "ubuntu_pro", "chef", "puppet", "salt_minion", "ssh_import_id", "runcmd", "bootcmd",
                      "write_files", "ca_certs", "ca-certs", "rsyslog", "lxd", "apk_repos", "yum_repos",
                      "zypper", "spacewalk", "rh_subscription", "mcollective", "ansible", "wireguard", "fan")


def test_first_boot_reaches_no_mirror_and_the_internet():
    doc = document()
    assert doc["package_update"] is False
    assert doc["package_upgrade"] is False
    assert doc["package_reboot_if_required"] is False
    assert doc["apt"] == {"preserve_sources_list": True}  # no sources written: the play sets the in-country mirror
    assert doc["vendor_data"] == {"enabled": False}  # the cloud's vendor data could install or phone home
    assert not set(doc) & set(FIRST_BOOT_NETWORK)


def test_user_data_holds_nothing_secret():
    text = render_user_data(UserData("debian", KEY, VOLUME_ID)).lower()
    for word in ("password", "passwd", "chpasswd", "private", "token", "secret"):
        assert word not in text
    assert set(document()) == {"user", "fs_setup", "mounts", "package_update", "package_upgrade",
                               "package_reboot_if_required", "apt", "vendor_data"}


# --- cloud-init's own schema --------------------------------------------------------------------------------------


def shipped_user_data() -> list[tuple[str, str]]:
    """(node group, user data) for one server of each node group of the shipped OpenStack site."""
    site = load_stack(OPENSTACK_STACK)
    first = {}
    for node in site.nodes:
        first.setdefault(node.role, node)
    return [(role, render_user_data(UserData(node.ssh_user, KEY, str(uuid.uuid5(uuid.NAMESPACE_URL, node.name)),
                                             f"sovkit {site.name} {node.name}")))
            for role, node in sorted(first.items())]


CLOUD_INIT = shutil.which("cloud-init")
needs_cloud_init = pytest.mark.skipif(
    CLOUD_INIT is None, reason="cloud-init is not installed (Debian package cloud-init; scripts/tool-deps.sh)")


def schema_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "user-data"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([CLOUD_INIT, "schema", "--config-file", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


@needs_cloud_init
@pytest.mark.parametrize(("role", "text"), [pytest.param(r, t, id=r) for r, t in shipped_user_data()])
def test_cloud_init_schema_accepts_the_shipped_site_user_data(tmp_path, role, text):
    result = schema_check(tmp_path, text)
    assert result.returncode == 0, f"{role}: {result.stdout}{result.stderr}"
    assert "Valid cloud-config" in result.stdout


@needs_cloud_init
def test_cloud_init_schema_check_is_not_vacuous(tmp_path):
    """The same check refuses user data with a wrong type or without its header."""
    text = render_user_data(UserData("debian", KEY, VOLUME_ID))
    assert schema_check(tmp_path, text.replace("package_update: false", "package_update: 7")).returncode != 0
    assert schema_check(tmp_path, text.replace("#cloud-config\n", "")).returncode != 0
