"""The rehearsal's layout of each shipped site, from the stack alone: the site's own names and addresses, its
services where the stack puts them, this machine inside the admin networks, and every substitution said."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.rehearse.plan import PlanError, plan
from sovkit.stacks import stack_files

ROOT = Path(__file__).resolve().parents[3]
SITES = {s.name: s for s in (load_stack(p) for p in stack_files(ROOT)) if s.infrastructure.provider != "local"}


def _ip(cidr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_interface(cidr).ip


def _inside(address, cidrs) -> bool:
    return any(address in ipaddress.ip_network(c) for c in cidrs if ipaddress.ip_network(c).version == address.version)


@pytest.mark.parametrize("name", sorted(SITES))
def test_hosts_keep_their_names_addresses_and_logins(name: str):
    site = SITES[name]
    layout = plan(site)
    assert [h.name for h in layout.hosts] == [n.name for n in site.nodes]
    for host, node in zip(layout.hosts, site.nodes, strict=True):
        assert (host.ssh_user, host.ssh_port, host.role) == (node.ssh_user, node.ssh_port, node.role)
        if node.address:
            assert host.address == node.address
        assert _inside(_ip(host.addresses[0]), site.residency.in_country_cidrs)


@pytest.mark.parametrize("name", sorted(SITES))
def test_this_machine_is_the_admin_machine_and_no_address_is_used_twice(name: str):
    site = SITES[name]
    layout = plan(site)
    assert layout.controller and all(_inside(_ip(c), site.residency.admin_cidrs) for c in layout.controller)
    used = [_ip(a) for h in layout.hosts for a in h.addresses] + [_ip(c) for c in layout.controller]
    assert len(used) == len(set(used))
    services = {_ip(a) for a in layout.service_addresses}
    assert not services & set(used)
    assert {str(a) for a in services} >= {*site.residency.dns_resolvers, *site.residency.ntp_servers}


@pytest.mark.parametrize("name", sorted(SITES))
def test_every_service_named_by_host_resolves_inside_the_country(name: str):
    site = SITES[name]
    layout = plan(site)
    for service in layout.services:
        if service.host != service.address:
            assert layout.records[service.host] == (service.address,)
        assert _inside(ipaddress.ip_address(service.address), site.residency.in_country_cidrs)
        assert service.stood_up or service.why_not
    relays = [s for s in layout.services if s.purpose == "mail relay"]
    assert len(relays) == (1 if site.monitoring.smtp_relay else 0)
    for domain, exchanger in layout.mail_exchangers.items():  # each receiver's domain finds the relay
        assert exchanger == relays[0].host and exchanger in layout.records and domain


def test_a_cloud_sites_nodes_get_addresses_of_its_network_outside_the_admin_range():
    site = SITES["id-sulsel-cloud"]
    layout = plan(site)
    admin = [ipaddress.ip_network(c) for c in site.residency.admin_cidrs]
    for host in layout.hosts:
        assert host.ssh_user == "debian" and not any(_ip(host.addresses[0]) in n for n in admin)
    assert any("OpenStack servers" in s.site for s in layout.substitutions)
    assert any(s.what == "data volumes" for s in layout.substitutions)


def test_what_cannot_exist_here_is_substituted_and_said():
    pune = {s.what: s for s in plan(SITES["in-mh-pune"]).substitutions}
    assert "vLLM's CPU engine" in pune["model servers"].rehearsal and "no accelerator" in pune["model servers"].why
    assert "noise by design" in pune["model weights"].why
    assert "does not install" in pune["model servers"].why  # the NVIDIA runtime is bundled, not rehearsed
    assert "no host here has" in pune["GPU metrics"].why  # NVML needs the NVIDIA driver
    vendor = pune["vendor repository nvidia"]
    assert vendor.site.startswith("http://mirror.mh.gov.example/nvidia-cuda/debian12/x86_64")
    assert "signed by the rehearsal archive key" in vendor.rehearsal and "not reachable here" in vendor.why
    za = {s.what: s for s in plan(SITES["za-national-dc"]).substitutions}
    assert "Kubernetes" in za and "model servers" not in za and "model weights" not in za
    # RKE2 sites: the role writes its files and stops before the release, which the stand-in mirror does not carry
    rke2 = za["RKE2 artifacts"]
    assert "stops there" in rke2.rehearsal and "tests/roles/test_rke2_role.py" in rke2.why
    assert za["GPU driver"].rehearsal == "not installed"
    brazil = plan(SITES["br-ministerio-cpu"])
    assert not {"model servers", "GPU metrics"} & {s.what for s in brazil.substitutions}  # its own engine
    assert brazil.service("model store").stood_up and brazil.service("mirror").stood_up
    assert not plan(SITES["za-national-dc"]).service("model store").stood_up


def test_vm_names_a_host_or_every_host_of_a_role():
    site = SITES["za-national-dc"]
    by_host = plan(site, ["cp-01"])
    assert [h.name for h in by_host.hosts if h.vm] == ["cp-01"]
    by_role = plan(site, ["control_plane", "store-01"])
    assert {h.name for h in by_role.hosts if h.vm} == {"cp-01", "cp-02", "cp-03", "store-01"}
    assert not any(h.vm for h in plan(site).hosts)


def test_vm_of_no_such_host_or_role_is_refused_naming_what_is_allowed():
    site = SITES["za-national-dc"]
    with pytest.raises(PlanError) as refused:
        plan(site, ["cp-09"])
    message = str(refused.value)
    assert str(site.source) in message and "--vm cp-09" in message
    assert "cp-01" in message and "control_plane" in message and "gpu_worker" in message


def test_vm_hosts_are_said_and_keep_the_sites_encryption_at_rest():
    site = SITES["za-national-dc"]
    assert site.residency.encryption_at_rest_required
    every = [h.name for h in site.nodes]
    mixed = {s.what: s for s in plan(site, ["store-01"]).substitutions}
    assert mixed["hosts on virtual machines"].site == "store-01"
    assert "LUKS" in mixed["hosts on virtual machines"].rehearsal
    assert "store-01" not in mixed["hosts"].site and "cp-01" in mixed["hosts"].site
    assert "store-01" not in mixed["encryption at rest"].rehearsal  # its folders are on the VM's LUKS volume
    only_vms = {s.what for s in plan(site, every).substitutions}
    assert "hosts on virtual machines" in only_vms and not {"hosts", "encryption at rest"} & only_vms
    cloud = {s.what for s in plan(SITES["id-sulsel-cloud"], [n.role for n in SITES["id-sulsel-cloud"].nodes])
             .substitutions}
    assert "data volumes" not in cloud  # a VM has block devices of its own
