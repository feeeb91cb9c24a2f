"""data_at_rest: data volumes on dm-crypt, swap off or encrypted (SOV-DAR-*)."""

from __future__ import annotations

import json

import pytest

from .conftest import not_applicable


@pytest.fixture(scope="module")
def inspection(host) -> dict:
    f = host.file("/var/lib/sovkit/data-at-rest.json")
    if not f.exists:
        pytest.fail("no /var/lib/sovkit/data-at-rest.json: the data_at_rest role has not run on this host")
    return json.loads(f.content_string)


@pytest.mark.control("SOV-DAR-001")
def test_inspection_covers_data_paths(inspection, site, evidence):
    """Every data directory of the site was inspected (model store, logs, Kubernetes data)."""
    paths = {v["path"] for v in inspection["volumes"]}
    expected = set(site["data_at_rest_paths"].values())
    evidence(sorted(paths))
    assert paths == expected


@pytest.mark.control("SOV-DAR-001")
@pytest.mark.live_only("a container has no LUKS or device-mapper of its own")
def test_data_volumes_encrypted(host, site, inspection, evidence):
    """When the stack requires encryption at rest, each data directory is on LUKS/dm-crypt, checked
    live with lsblk (not only the recorded inspection)."""
    if not site["data_at_rest_required"]:
        not_applicable("encryption at rest is not required by this stack (encryptionAtRestRequired: false)")
    cloud = site.get("data_at_rest_cloud_volume") or {}
    for vol in inspection["volumes"]:
        mount = host.check_output(f"findmnt -n -o TARGET --target {vol['path']}")
        if cloud and mount == cloud["mount"]:
            # Encrypted below the guest by the cloud's volume type, which the guest cannot see; the evidence is
            # the type the volume was made with (`openstack volume type show --encryption-type` shows its spec).
            evidence(f"{vol['path']}: on {mount}, a volume of the encrypted type {cloud['volume_type']}")
            continue
        source = host.check_output(f"findmnt -n --nofsroot -o SOURCE --target {vol['path']}")  # a bind: its device
        chain = host.check_output(f"lsblk --inverse --noheadings --list -o TYPE {source}").split()
        evidence(f"{vol['path']}: {source} {chain}")
        assert "crypt" in chain, f"{vol['path']} is on {source}, not on dm-crypt"


@pytest.mark.control("SOV-DAR-002")
@pytest.mark.live_only("/proc/swaps in a container shows the machine's swap")
def test_swap_off_or_encrypted(host, evidence):
    """No swap, or swap on dm-crypt: memory (prompts, keys) never reaches a disk in clear."""
    swaps = host.file("/proc/swaps").content_string.splitlines()[1:]
    bad = []
    for line in swaps:
        dev = line.split()[0]
        chain = host.run(f"lsblk --inverse --noheadings --list -o TYPE {dev}").stdout.split()
        if "crypt" not in chain:
            bad.append(dev)
    evidence(f"swap: {swaps}; unencrypted: {bad}")
    assert bad == []
