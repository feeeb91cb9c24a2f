"""What a VM of the VM tier is given at boot, checked without booting one: the seed unit waits for the very device
udev names after the seed disk's label (systemd's own escaping), and the network file gives the card its addresses
and an on-link route to every network of the site, as the lab's other machines have."""

from __future__ import annotations

import configparser
import shutil
import subprocess

import pytest

from sovkit.hosts.vm import SEED_LABEL, SEED_UNIT, network_file


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed (systemd)")
def test_the_seed_unit_waits_for_the_seed_disk_by_its_label():
    device = subprocess.run(["systemd-escape", "--path", "--suffix=device", f"/dev/disk/by-label/{SEED_LABEL}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(SEED_UNIT)
    assert unit["Unit"]["Requires"] == device
    assert device in unit["Unit"]["After"].split()
    assert {"systemd-networkd.service", "ssh.service"} <= set(unit["Unit"]["Before"].split())


def test_the_network_file_holds_the_addresses_and_a_route_to_each_site_network():
    text = network_file(["198.18.0.10/24", "2001:db8:55::10/64"], ["198.18.0.0/24", "2001:db8:55::/48"])
    sections = [block.strip() for block in text.split("\n\n")]
    assert "Address=198.18.0.10/24" in sections[1] and "Address=2001:db8:55::10/64" in sections[1]
    routes = [s for s in sections if s.startswith("[Route]")]
    assert [r.splitlines()[1:] for r in routes] == [["Destination=198.18.0.0/24", "Scope=link"],
                                                    ["Destination=2001:db8:55::/48", "Scope=link"]]
    assert "IPv6AcceptRA=no" in sections[1]  # no router may add a way out


def test_a_bad_address_is_refused_before_anything_boots():
    with pytest.raises(ValueError):
        network_file(["198.18.0.300/24"], [])
