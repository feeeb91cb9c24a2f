"""SiteConfig: a validated stack file with its country profile, and the facts every renderer derives from it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property

from sovkit.config.profiles import CountryProfile
from sovkit.config.schema import (
    AcceleratorSection,
    InfrastructureSection,
    ModelSpec,
    MonitoringSection,
    PlatformSection,
    ResidencySection,
    ServingSection,
    SiteSection,
)
from sovkit.config.types import ROLES
from sovkit.data import load_yaml

LOCAL_NETWORK_DEFAULT = "198.18.0.0/24"
LOCAL_FIRST_HOST = 10


@dataclass(frozen=True)
class Node:
    """One machine of the site, whatever the provider."""

    name: str
    role: str
    address: str | None  # None until the cloud gives one (openstack)
    accelerator_model: str | None
    accelerator_count: int
    ssh_user: str = "sovkit"
    ssh_port: int = 22


def accelerator_catalogue() -> dict[str, dict]:
    return load_yaml("accelerators.yaml")  # type: ignore[return-value]


@dataclass(frozen=True)
class SiteConfig:
    source: str  # the stack file (or "pulumi config") it was read from
    site: SiteSection
    infrastructure: InfrastructureSection
    residency: ResidencySection
    platform: PlatformSection
    accelerator: AcceleratorSection
    serving: ServingSection
    monitoring: MonitoringSection
    profile: CountryProfile
    provenance: dict[str, str] = field(default_factory=dict, compare=False)  # key -> where its value came from

    @property
    def name(self) -> str:
        return self.site.site_name

    @property
    def log_retention_days(self) -> int:
        """The stack's value, or the country profile's default (filled in by the loader)."""
        assert self.residency.log_retention_days is not None  # the loader always resolves it
        return self.residency.log_retention_days

    @property
    def log_retention_minimum(self) -> tuple[int | None, str]:
        """(the fewest days the country's law lets logs be kept, or None; the clause that says so)."""
        default = self.profile.defaults.log_retention_days
        basis = self.profile.citation(default.clause) if default.clause else self.profile.law.short_name
        return default.minimum, basis

    @cached_property
    def nodes(self) -> tuple[Node, ...]:
        infra = self.infrastructure
        if infra.provider == "onprem":
            return tuple(
                Node(name, h.role, h.address, h.accelerator.model, h.accelerator.count, h.ssh_user, h.ssh_port)
                for name, h in (infra.hosts or {}).items()
            )
        if infra.provider == "openstack":
            # Ansible logs in as the image's login user, which cloud-init creates with the site's key.
            return tuple(
                Node(f"{self.name}-{role.replace('_', '-')}-{i}", role, None, g.accelerator.model, g.accelerator.count,
                     g.login_user)
                for role, g in (infra.openstack_node_groups or {}).items()
                for i in range(1, g.count + 1)
            )
        # local: podman hosts on the internal network localNetworkCidr, from its 10th address on (the
        # first is the bridge, this machine's side of it).
        names = [(f"{self.name}-{role.replace('_', '-')}-{i}", role)
                 for role in ROLES for i in range(1, (infra.local_nodes or {}).get(role, 0) + 1)]
        network = ipaddress.ip_network(infra.local_network_cidr or LOCAL_NETWORK_DEFAULT)
        return tuple(Node(name, role, str(network[LOCAL_FIRST_HOST + i]), None, 0, "root", 22)
                     for i, (name, role) in enumerate(names))

    def nodes_with_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.role == role]

    def model_role(self, model: ModelSpec) -> str:
        """The node role a model runs on: its own setting, else by the site's accelerator."""
        if model.node_role:
            return model.node_role
        return "cpu_worker" if self.accelerator.accelerator == "cpu" else "gpu_worker"

    def serving_nodes(self) -> list[Node]:
        """The nodes that run models (and, in hosts mode, each its gateway), in stack order."""
        roles = {self.model_role(m) for m in self.serving.models.values()}
        return [n for n in self.nodes if n.role in roles]

    def tenants_of(self, served_name: str) -> list[str]:
        """Tenants allowed to call a model (tenants list their models: one place holds the grant)."""
        return sorted(t for t, spec in self.serving.tenants.items() if served_name in spec.models)

    def accelerator_memory_mib(self, model_name: str) -> int:
        return int(accelerator_catalogue()[model_name]["memory_mib"])
