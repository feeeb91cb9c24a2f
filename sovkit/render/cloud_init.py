"""cloud-init user data of an OpenStack server, and the facts of its encrypted data volume: pure functions.

What the user data does at the server's first boot, and nothing more (the site play does the rest):

- The node group's login user (`loginUser`, default `debian`) takes the site's public key. The `user:` key
  overrides the image's default user: Debian's cloud images create `debian` from cloud-init's `default_user`
  (Debian 12 ships it in /etc/cloud/cloud.cfg with `sudo: ["ALL=(ALL) NOPASSWD:ALL"]`, a locked password and the
  `sudo` group), and the name given here keeps every other attribute of it, so the login user has passwordless
  sudo, which Ansible needs to become root. Nova also hands the server's key pair to cloud-init; it is the same key.
- The data volume (the encrypted Cinder volume attached at boot) becomes an ext4 file system labelled
  `sovkit-data`, mounted at /srv/sovkit with nodev,nosuid,nofail: the model store (/srv/sovkit/models) lives on
  it. `fs_setup` with `partition: auto` formats only a disk without a file system: a volume that already holds
  the `sovkit-data` ext4 (a server rebuilt around its old volume) is reused, and a disk that holds anything
  else is left alone. The disk is addressed by its stable path, never /dev/vdb (see `data_volume_device`).
- Nothing at first boot reaches a mirror or the Internet: no package update or upgrade, apt's sources kept as
  the image has them (the site play points apt at the in-country mirror), no vendor data from the cloud (which
  could install packages or phone home), no phone-home, NTP, snap, Landscape or configuration-management modules
  (none is configured, and those modules do nothing unconfigured). The only service reached is the cloud's own
  metadata service (169.254.169.254), where cloud-init reads this user data.
- Nothing secret: user data is readable by every process on the server through the metadata service, and by
  anyone who can read the server in the cloud's API. It holds a public key, a user name and a device path.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

import yaml

# The cloud's metadata service: cloud-init reads the server's key and this user data there at first boot.
METADATA_ADDRESS, METADATA_PORT = "169.254.169.254", 80
DATA_MOUNT = "/srv/sovkit"
DATA_LABEL = "sovkit-data"
DATA_FSTYPE = "ext4"
DATA_MOUNT_OPTIONS = "defaults,nodev,nosuid,nofail"  # nofail: a missing volume never stops the server booting
VIRTIO_SERIAL_CHARS = 20
# OpenSSH public key types a Nova key pair and Debian 12's sshd both accept (DSA is off in OpenSSH 9, and the
# security-key `sk-` types need a hardware key on the operator's side that Ansible cannot drive unattended).
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
KEYS_ALLOWED = (f"one OpenSSH public key line, `<type> <base64> [comment]` as ssh-keygen writes it to a .pub file, "
                f"of type {', '.join(KEY_TYPES)}")


class PublicKeyError(ValueError):
    """A public key file's content that is not one usable OpenSSH public key."""

    def __init__(self, found: str) -> None:
        super().__init__(f"found {found}; allowed: {KEYS_ALLOWED}")
        self.found = found
        self.allowed = KEYS_ALLOWED


def parse_public_key(text: str) -> str:
    """The one OpenSSH public key line of a .pub file's text, checked; PublicKeyError says what was found.

    Never echoes key material: a private key is named as one by its header only."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not lines:
        raise PublicKeyError("an empty file")
    if lines[0].startswith("-----BEGIN"):
        kind = "a private key" if "PRIVATE" in lines[0] else "a PEM block"
        raise PublicKeyError(f"{kind} ({lines[0][:40]}); give the .pub file next to it")
    if len(lines) > 1:
        raise PublicKeyError(f"{len(lines)} keys (a Nova key pair holds exactly one)")
    fields = lines[0].split()
    key_type = fields[0]
    if key_type not in KEY_TYPES:
        shown = key_type if len(key_type) <= 40 else key_type[:37] + "..."
        raise PublicKeyError(f"a line starting {shown!r}, not a supported key type")
    if len(fields) < 2:
        raise PublicKeyError(f"a {key_type} line with no key after the type")
    try:
        blob = base64.b64decode(fields[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4:4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise PublicKeyError(f"a {key_type} line whose key is not valid base64 OpenSSH key data") from None
    if embedded != key_type or len(blob) <= 4 + length:
        raise PublicKeyError(f"a {key_type} line whose key data is of type {embedded!r} or cut short")
    return " ".join(fields)


def data_volume_device(volume_id: str) -> str:
    """The stable path of a Cinder volume attached to a KVM server over virtio-blk.

    Nova gives every attached volume the volume's id as its disk serial number ("we already expose the volume id
    as the serial number of a disk" for attached volumes, nova-specs, "Expose persistent serial numbers for local
    disks", https://specs.openstack.org/openstack/nova-specs/specs/rocky/approved/local-disk-serial-numbers.html;
    Nova bug 1004328). A virtio-blk serial holds at most 20 characters (Linux's virtio_blk 'serial' attribute,
    "ATA_IDENTIFY strings ... can be up to 20 chars long", kernel commit a5eb9e4ff18a), so the guest sees the
    first 20 characters of the id, and udev's 60-persistent-storage.rules link
    /dev/disk/by-id/virtio-<serial> to the disk ("KVM/virtio exposes the first 20 chars of UUID as virtio serial
    number", kubernetes/kubernetes#33128, which Kubernetes' Cinder support relies on). The kernel name
    (/dev/vdb, ...) follows the order disks appear in and is not stable. A cloud that attaches volumes over
    virtio-scsi (image property hw_disk_bus=scsi) names them /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_<id>
    instead; sovkit does not support that bus."""
    return f"/dev/disk/by-id/virtio-{volume_id[:VIRTIO_SERIAL_CHARS]}"


def data_volume_facts(volume_id: str, volume_type: str) -> dict[str, str]:
    """The evidence of a node's encrypted data volume, for the stack output and the host variable
    `sovkit_data_volume`: encryption at rest is the Cinder volume type's (LUKS on the compute host, below the
    guest), so the guest sees a plain disk and the evidence is the volume and its type, as the cloud reports them."""
    return {"device": data_volume_device(volume_id), "mount": DATA_MOUNT, "volume_id": volume_id,
            "volume_type": volume_type, "encrypted_by": f"cinder volume type {volume_type}"}


@dataclass(frozen=True)
class UserData:
    """What one server's user data is made of."""

    login_user: str  # the node group's loginUser
    public_key: str  # the site's key, as parse_public_key returned it
    volume_id: str  # the Cinder id of the server's data volume
    label: str = ""  # a comment line naming the server (no effect)


def user_data_document(data: UserData) -> dict:
    """The cloud-config as a dict (what `render_user_data` writes after its `#cloud-config` line)."""
    device = data_volume_device(data.volume_id)
    return {
        "user": {"name": data.login_user, "ssh_authorized_keys": [data.public_key]},
        "fs_setup": [{"label": DATA_LABEL, "filesystem": DATA_FSTYPE, "device": device, "partition": "auto",
                      "overwrite": False}],
        "mounts": [[device, DATA_MOUNT, DATA_FSTYPE, DATA_MOUNT_OPTIONS, "0", "2"]],
        "package_update": False,
        "package_upgrade": False,
        "package_reboot_if_required": False,
        "apt": {"preserve_sources_list": True},
        "vendor_data": {"enabled": False},
    }


def render_user_data(data: UserData) -> str:
    """`#cloud-config` user data (valid YAML that `cloud-init schema` accepts), deterministic."""
    head = ["#cloud-config"]
    if data.label:
        head.append(f"# {data.label.splitlines()[0]}: rendered by sovkit/render/cloud_init.py; holds nothing secret")
    body = yaml.safe_dump(user_data_document(data), sort_keys=False, default_flow_style=False, width=4096)
    return "\n".join(head) + "\n" + body
