"""Nodes: the machines of a site. On-prem (and local) hosts are recorded as they are; on OpenStack, servers are
created in the in-country region and availability zone, each with an encrypted data volume attached at boot, the
site's key pair, cloud-init user data (sovkit/render/cloud_init.py) that gives the image's login user that key and
formats and mounts the data volume, and a security group that admits SSH only from the admin networks and the API
only from the in-country networks, and lets the servers reach only the in-country networks and the cloud's
metadata service.

Encryption at rest on OpenStack is the Cinder volume type's (LUKS, applied on the compute host, below the guest).
pulumi-openstack 5.5.3 cannot read a volume type's encryption spec: it has no volume-type data source, and neither
`blockstorage.VolumeTypeV3` (name, description, extra_specs, is_public) nor `blockstorage.Volume` or
`get_volume_v3` carries an encryption field or Cinder's `encrypted` flag (Cinder's
GET /types/{id}/encryption is also admin-only by default). So sovkit cannot refuse an unencrypted type itself:
the stack names the encrypted type (openstackVolumeType), the residency transform refuses any volume of another
type (SOV-RES-VOL), and each node's evidence records the volume and the type the cloud reports the created volume
to have (`data_volumes`).
"""

from __future__ import annotations

import ipaddress
import warnings
from pathlib import Path

import pulumi
from pydantic import BaseModel, ConfigDict, Field

from sovkit import ports
from sovkit.config.schema import PROJECT, NodeGroup
from sovkit.config.site import SiteConfig
from sovkit.errors import Problem, StackError
from sovkit.render.cloud_init import (
    KEYS_ALLOWED,
    METADATA_ADDRESS,
    METADATA_PORT,
    PublicKeyError,
    UserData,
    data_volume_facts,
    parse_public_key,
    render_user_data,
)

with warnings.catch_warnings():
    # The SDK imports every module, deprecated ones included, and each warns once; sovkit uses none of them.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_openstack as openstack

TYPE = "sovkit:infra:Nodes"
SSH_PORT = 22
API_PORT = ports.GATEWAY  # the TLS gateway: hosts mode serves there, kubernetes mode's ingress too
KUBE_API_PORT = 6443  # RKE2's API server, reached by the operator's Pulumi and kubectl from the admin networks
GATEWAY_ROLES = ("gpu_worker", "cpu_worker", "control_plane")  # the first node of these takes the floating IP
# The cloud's metadata service: cloud-init reads the server's user data and key there at first boot (Nova's
# OpenStack and EC2 metadata APIs, served on the link-local address through Neutron's metadata proxy).
METADATA_CIDR = f"{METADATA_ADDRESS}/32"
KEY_PATH = f"{PROJECT}:openstackSshPublicKey"
DATA_VOLUME_VAR = "sovkit_data_volume"  # the host variable holding a node's data volume evidence


class NodeRecord(BaseModel):
    """One machine as the rest of the program sees it."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: str = Field(description="control_plane | gpu_worker | cpu_worker | storage")
    address: str | None = Field(None, description="Management address; None until OpenStack assigns one")
    accelerator_model: str | None = None
    accelerator_count: int = 0


class OpenStackPlacement(BaseModel):
    """Where and how OpenStack servers are made: every field comes from the stack's openstack* keys."""

    model_config = ConfigDict(frozen=True)

    cloud: str = Field(description="clouds.yaml entry of the in-country cloud")
    region: str = Field(description="Region every server and volume is created in")
    availability_zone: str = Field(description="Availability zone of every server and volume")
    network: str = Field(description="Tenant network the servers join")
    volume_type: str = Field(description="Encrypted (LUKS) Cinder volume type of the data volumes")
    node_groups: dict[str, NodeGroup] = Field(description="Servers per role (each with its image's login user)")
    ssh_public_key: str = Field(description="The site's OpenSSH public key (one line): the servers' key pair")
    floating_ip: bool = Field(False, description="Give the gateway node a floating IP")
    floating_ip_pool: str | None = Field(None, description="External network the floating IP comes from")


class NodesArgs(BaseModel):
    """What the Nodes component needs, derived from the validated site."""

    model_config = ConfigDict(frozen=True)

    site_name: str = Field(description="Site name, prefix of every resource name")
    country: str = Field(description="ISO country code, written into server metadata")
    provider: str = Field(description="onprem | openstack | local")
    mode: str = Field(description="hosts | kubernetes: kubernetes also opens the API server to the admin networks")
    nodes: tuple[NodeRecord, ...] = Field(description="The machines, named as the inventory names them")
    admin_cidrs: tuple[str, ...] = Field(description="Networks SSH (and the Kubernetes API) is admitted from")
    api_cidrs: tuple[str, ...] = Field(description="Networks the serving API is admitted from (in-country)")
    openstack: OpenStackPlacement | None = Field(None, description="Set when provider is openstack")

    @classmethod
    def from_site(cls, site: SiteConfig) -> NodesArgs:
        infra = site.infrastructure
        placement = None
        if infra.provider == "openstack":
            placement = OpenStackPlacement(
                cloud=infra.openstack_cloud or "", region=infra.openstack_region or "",
                availability_zone=infra.openstack_availability_zone or "", network=infra.openstack_network or "",
                volume_type=infra.openstack_volume_type or "", node_groups=dict(infra.openstack_node_groups or {}),
                ssh_public_key=read_public_key(site), floating_ip=infra.openstack_floating_ip,
                floating_ip_pool=infra.openstack_floating_ip_pool)
        return cls(
            site_name=site.name, country=site.site.country, provider=infra.provider, mode=site.platform.mode,
            nodes=tuple(NodeRecord(name=n.name, role=n.role, address=n.address, accelerator_model=n.accelerator_model,
                                   accelerator_count=n.accelerator_count) for n in site.nodes),
            admin_cidrs=tuple(site.residency.admin_cidrs), api_cidrs=tuple(site.residency.in_country_cidrs),
            openstack=placement)


def read_public_key(site: SiteConfig) -> str:
    """The OpenSSH public key openstackSshPublicKey names, read on this machine when the program runs.

    An unreadable or malformed file stops the program before any resource exists, with the message
    `sovkit validate` would give: the stack file, the key path, the key file and what it holds, what is allowed."""
    path = Path(site.infrastructure.openstack_ssh_public_key or "")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        found = f"{path}, which cannot be read ({err.strerror or type(err).__name__})"
    except UnicodeDecodeError:
        found = f"{path}, which is not a text file"
    else:
        try:
            return parse_public_key(text)
        except PublicKeyError as err:
            found = f"{path}, which holds {err.found}"
    problem = Problem(KEY_PATH, found, KEYS_ALLOWED,
                      fix="point openstackSshPublicKey at the operations team's .pub file on this machine, or make "
                          f"one: ssh-keygen -t ed25519 -f {path.with_suffix('') if path.suffix == '.pub' else path}")
    raise pulumi.RunError(str(StackError(site.source, [problem])))


def _ethertype(cidr: str) -> str:
    return "IPv6" if ipaddress.ip_network(cidr).version == 6 else "IPv4"


def _slug(text: str) -> str:
    return text.replace("/", "-").replace(":", "-").replace(".", "-")


class Nodes(pulumi.ComponentResource):
    """The site's machines. `addresses` maps each node name to its management address (an Output)."""

    addresses: dict[str, pulumi.Output[str]]
    roles: dict[str, str]

    def __init__(self, name: str, args: NodesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        self.args = args
        self.roles = {n.name: n.role for n in args.nodes}
        self.servers: dict[str, openstack.compute.Instance] = {}
        self.volumes: dict[str, openstack.blockstorage.Volume] = {}
        # OpenStack: per node, the evidence of its encrypted data volume (cloud_init.data_volume_facts).
        self.data_volumes: dict[str, pulumi.Output[dict]] = {}
        self.keypair: openstack.compute.Keypair | None = None
        self.security_group: openstack.networking.SecGroup | None = None
        self.rules: list[openstack.networking.SecGroupRule] = []
        self.floating_ip: openstack.networking.FloatingIp | None = None
        if args.provider == "openstack":
            assert args.openstack is not None  # the schema's provider rule requires every openstack* key
            self.addresses = self._openstack(name, args, args.openstack)
        else:
            # Existing hosts (onprem) or the local podman containers: recorded, never created or destroyed here.
            self.addresses = {n.name: pulumi.Output.from_input(n.address or n.name) for n in args.nodes}
        self.hosts = pulumi.Output.all(**self.addresses).apply(
            lambda addresses: {n: {"address": a, "role": self.roles[n]} for n, a in sorted(addresses.items())})
        self.register_outputs({"hosts": self.hosts, "data_volumes": self.data_volumes})

    def _openstack(self, name: str, args: NodesArgs, place: OpenStackPlacement) -> dict[str, pulumi.Output[str]]:
        child = pulumi.ResourceOptions(parent=self)
        # An explicit provider pins every server and volume to the in-country cloud and region, whatever the
        # operator's environment (OS_REGION_NAME, another clouds.yaml entry) says.
        provider = openstack.Provider(f"{name}-openstack", cloud=place.cloud, region=place.region, opts=child)
        opts = pulumi.ResourceOptions(parent=self, provider=provider)
        metadata = {"sovkit-site": args.site_name, "sovkit-country": args.country}
        group = openstack.networking.SecGroup(
            f"{name}-nodes", name=f"{args.site_name}-nodes", region=place.region, delete_default_rules=True,
            description=f"sovkit {args.site_name}: SSH from admin networks, API from in-country networks only",
            opts=opts)
        self.security_group = group
        self._rules(name, args, place, group, opts)
        # A new key replaces the key pair under the same name, so the old one goes first.
        self.keypair = openstack.compute.Keypair(
            f"{name}-login", name=f"{args.site_name}-login", public_key=place.ssh_public_key, region=place.region,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)))
        images: dict[str, pulumi.Output[str]] = {}
        # A server is replaced (new key, login user or volume) by deleting it first: its data volume can be attached
        # to one server at a time, and it survives (delete_on_termination false) to be mounted again, not
        # formatted, by the new one. A new upload under the image's name leaves running servers alone
        # (ignore_changes); servers created later boot from it.
        server_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            delete_before_replace=True, ignore_changes=["imageId", "blockDevices[0].uuid"]))
        addresses: dict[str, pulumi.Output[str]] = {}
        for node in args.nodes:
            node_group = place.node_groups[node.role]
            if node_group.image not in images:
                images[node_group.image] = openstack.images.get_image_output(
                    name=node_group.image, region=place.region,
                    opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)).id
            volume = openstack.blockstorage.Volume(
                f"{node.name}-data", name=f"{node.name}-data", size=node_group.volume_gb,
                volume_type=place.volume_type, availability_zone=place.availability_zone, region=place.region,
                metadata={**metadata, "sovkit-role": node.role}, opts=opts)
            user_data = volume.id.apply(lambda volume_id, node=node, login=node_group.login_user: render_user_data(
                UserData(login, place.ssh_public_key, volume_id, f"sovkit {args.site_name} {node.name}")))
            # The data volume is attached at boot (a block device mapping), not after the server is up: cloud-init
            # formats and mounts it early in the first boot, and a volume attached later would not be there yet.
            # Nova's API takes an image mapped to the local root disk only as boot_index 0 alongside the image
            # itself, so the image's id is looked up once per image name.
            server = openstack.compute.Instance(
                node.name, name=node.name, flavor_name=node_group.flavor, image_id=images[node_group.image],
                region=place.region, availability_zone=place.availability_zone,
                networks=[openstack.compute.InstanceNetworkArgs(name=place.network)],
                security_groups=[group.name], key_pair=self.keypair.name, user_data=user_data,
                block_devices=[
                    openstack.compute.InstanceBlockDeviceArgs(
                        uuid=images[node_group.image], source_type="image", destination_type="local", boot_index=0,
                        delete_on_termination=True),
                    openstack.compute.InstanceBlockDeviceArgs(
                        uuid=volume.id, source_type="volume", destination_type="volume", boot_index=-1,
                        delete_on_termination=False),
                ],
                metadata={**metadata, "sovkit-role": node.role}, opts=server_opts)
            self.servers[node.name] = server
            self.volumes[node.name] = volume
            # The type as the cloud reports it for the created volume, not as the stack asked for it.
            self.data_volumes[node.name] = pulumi.Output.all(volume.id, volume.volume_type).apply(
                lambda facts: data_volume_facts(facts[0], facts[1]))
            addresses[node.name] = server.access_ip_v4
        if place.floating_ip:
            self._floating_ip(name, args, place, opts)
        return addresses

    def _rules(self, name: str, args: NodesArgs, place: OpenStackPlacement, group: openstack.networking.SecGroup,
               opts: pulumi.ResourceOptions) -> None:
        def rule(key: str, direction: str, cidr: str | None, port: int | None = None, protocol: str | None = "tcp",
                 ethertype: str | None = None) -> None:
            self.rules.append(openstack.networking.SecGroupRule(
                f"{name}-{key}", direction=direction, ethertype=ethertype or _ethertype(cidr or ""),
                security_group_id=group.id, protocol=protocol, port_range_min=port, port_range_max=port,
                remote_ip_prefix=cidr, remote_group_id=group.id if cidr is None else None, region=place.region,
                opts=opts))

        for cidr in args.admin_cidrs:
            rule(f"ssh-{_slug(cidr)}", "ingress", cidr, SSH_PORT)
            if args.mode == "kubernetes":
                rule(f"kube-api-{_slug(cidr)}", "ingress", cidr, KUBE_API_PORT)
            else:  # hosts mode: the operators' Prometheus on the first serving node (`sovkit up` prints its URL)
                rule(f"prometheus-{_slug(cidr)}", "ingress", cidr, ports.PROMETHEUS)
        for cidr in args.api_cidrs:
            rule(f"api-{_slug(cidr)}", "ingress", cidr, API_PORT)
            rule(f"egress-{_slug(cidr)}", "egress", cidr, protocol=None)  # in-country only; the rest is dropped
        # cloud-init's first boot reads the user data and the key pair from the cloud's metadata service.
        rule("metadata", "egress", METADATA_CIDR, METADATA_PORT)
        for ethertype in ("IPv4", "IPv6"):  # the site's own nodes talk freely to each other
            rule(f"intra-in-{ethertype.lower()}", "ingress", None, protocol=None, ethertype=ethertype)
            rule(f"intra-out-{ethertype.lower()}", "egress", None, protocol=None, ethertype=ethertype)

    def _floating_ip(self, name: str, args: NodesArgs, place: OpenStackPlacement, opts: pulumi.ResourceOptions) -> None:
        if not place.floating_ip_pool:  # `sovkit validate` refuses such a stack; NodesArgs made by hand can get here
            raise pulumi.RunError(
                "openstackFloatingIp is true but sovkit does not know the external network (pool) to take the "
                "address from; allowed: openstackFloatingIpPool naming the external network, or openstackFloatingIp: "
                "false (reach the gateway through the tenant network). Nothing was changed.")
        gateway = next(n for role in GATEWAY_ROLES for n in args.nodes if n.role == role)
        self.floating_ip = openstack.networking.FloatingIp(
            f"{name}-gateway", pool=place.floating_ip_pool, region=place.region,
            description=f"sovkit {args.site_name} gateway", opts=opts)
        port = self.servers[gateway.name].networks.apply(lambda networks: networks[0].port)
        openstack.networking.FloatingIpAssociate(f"{name}-gateway", floating_ip=self.floating_ip.address,
                                                 port_id=port, region=place.region, opts=opts)
