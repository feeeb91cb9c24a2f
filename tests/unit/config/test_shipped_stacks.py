"""The stacks sovkit ships validate, and they look like the sites they claim to be."""

import ipaddress
import re
from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.stacks import stack_files, stack_name

STACKS = stack_files(Path(__file__).parents[3])
# RFC 5737/3849 documentation ranges, plus RFC 2544's benchmarking range for the local stack's own hosts
# (192.0.2.0/24 is the uplink of many CI runners, so podman cannot create a network on it there).
DOCUMENTATION_RANGES = [ipaddress.ip_network(n) for n in
                        ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "198.18.0.0/15")]
ADDRESS = re.compile(r"(?<![\w.:])(\d{1,3}(?:\.\d{1,3}){3}(?:/\d+)?|[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}(?:/\d+)?)"
                     r"(?![\w.:])")


@pytest.mark.parametrize("path", STACKS, ids=stack_name)
def test_shipped_stack_validates(path: Path):
    site = load_stack(path)
    assert site.name == stack_name(path)


@pytest.mark.parametrize("path", STACKS, ids=stack_name)
def test_shipped_stacks_use_documentation_addresses_only(path: Path):
    """Example sites must never point at somebody's real network."""
    for match in ADDRESS.finditer(path.read_text()):
        try:
            network = ipaddress.ip_network(match.group(1), strict=False)
        except ValueError:
            continue
        assert any(network.version == d.version and network.subnet_of(d) for d in DOCUMENTATION_RANGES), (
            f"{path.name}: {match.group(1)} is not in a documentation range")


def test_examples_cover_countries_providers_modes_and_accelerators():
    sites = [load_stack(p) for p in STACKS if stack_name(p) != "local"]
    assert len(sites) >= 4
    assert len({s.site.country for s in sites}) >= 4
    assert {s.infrastructure.provider for s in sites} >= {"onprem", "openstack"}
    assert {s.platform.mode for s in sites} == {"hosts", "kubernetes"}
    assert {s.accelerator.accelerator for s in sites} == {"nvidia", "amd", "cpu"}
    gpu_counts = {n.accelerator_model: n.accelerator_count for s in sites for n in s.nodes if n.accelerator_model}
    assert gpu_counts["H100-SXM5-80GB"] == 8 and gpu_counts["L40S-48GB"] == 4 and gpu_counts["MI210-64GB"] == 4


def test_local_stack_is_the_embedded_default_on_this_machine():
    site = load_stack(next(p for p in STACKS if stack_name(p) == "local"))
    assert site.infrastructure.provider == "local"
    assert site.accelerator.accelerator == "cpu"
    assert 2 <= len(site.nodes) <= 3
    assert {m.catalogue for m in site.serving.models.values()} == {"sovkit-tiny-llama"}  # made offline
    # one tenant is not granted every model, so the gateway's per-tenant grant is shown (404 to that tenant)
    assert any(set(t.models) != set(site.serving.models) for t in site.serving.tenants.values())
