"""Residency enforced on the resource graph: a stack transform that refuses any resource breaking it.

Every resource the program (or a component, or a provider's own child) registers passes through
`ResidencyPolicy.transform` before the engine plans it. A resource that would move data, images or reachability
out of the country stops the run with a message naming the resource, the rule and what is allowed. The policy
only refuses; it never rewrites a resource, so what the stack file says is what gets built.

The state backend is checked at start: the stack's `stateBackend` is validated by the schema already, and the
backend the engine is really using is compared with it when the CLI reports it (PULUMI_BACKEND_URL).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pulumi
from pulumi.runtime import rpc

from sovkit.config.rules import is_in_country
from sovkit.config.site import SiteConfig
from sovkit.config.types import host_of_url
from sovkit.render.cluster import GATEWAY_NAMESPACE
from sovkit.render.cluster_gateway import NAME as GATEWAY_NAME

OPEN_TO_ALL = ("0.0.0.0/0", "::/0")
BACKEND_ENV = "PULUMI_BACKEND_URL"

# Rule ids: stable, quoted in every refusal so an operator can look them up in docs/pulumi.md.
IMAGE_RULE = "SOV-RES-IMG"
CHART_RULE = "SOV-RES-CHART"
LOADBALANCER_RULE = "SOV-RES-LB"
OPEN_RULE_RULE = "SOV-RES-SG"
PLACEMENT_RULE = "SOV-RES-ZONE"
VOLUME_RULE = "SOV-RES-VOL"
FLOATING_IP_RULE = "SOV-RES-FIP"
BACKEND_RULE = "SOV-RES-STATE"


class ResidencyError(pulumi.RunError):
    """A resource, or the state backend, would break the site's residency; nothing was changed."""


@dataclass(frozen=True)
class Violation:
    rule: str
    found: str
    allowed: str

    def message(self, type_: str, name: str) -> str:
        return (f"residency: {type_} {name!r} breaks {self.rule}: found {self.found}; allowed: {self.allowed}. "
                "Nothing was changed.")


# --- walking resource properties -----------------------------------------------------------------------


def _plain(value: object) -> object:
    """A property value with Pulumi's secret wrappers removed (the transform sees the wire form)."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _known_str(value: object) -> str | None:
    """A string that is known now (not an output still being computed)."""
    if isinstance(value, str) and value != rpc.UNKNOWN:
        return value
    return None


def _walk(node: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, node
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, str(i)))


def image_references(props: Mapping[str, object]) -> Iterator[tuple[str, str, bool]]:
    """(property path, image or registry, is_registry) for every container image a resource's properties name.

    Kubernetes objects carry `image: registry/repo:tag`; Helm values also use the split form
    `image: {registry, repository, tag}` and chart-wide `registry` / `imageRegistry` overrides."""
    for path, node in _walk(props):
        if not path:
            continue
        where = ".".join(path)
        if path[-1] == "image" and (text := _known_str(node)):
            yield where, text, False
        elif path[-1] == "image" and isinstance(node, Mapping) and (repo := _known_str(node.get("repository"))):
            registry = _known_str(node.get("registry"))
            yield where, f"{registry.rstrip('/')}/{repo}" if registry else repo, False
        elif path[-1] in ("imageRegistry", "registry") and (text := _known_str(node)) and (
                len(path) < 2 or path[-2] != "image"):
            yield where, text, True


def _in_registry(image: str, registry: str) -> bool:
    registry = registry.rstrip("/")
    return image.startswith(registry + "/")


def _registry_host(ref: str) -> str:
    return ref.split("/", 1)[0].lower()


# --- the policy ----------------------------------------------------------------------------------------


class ResidencyPolicy:
    """The residency rules of one site, applied to one resource at a time."""

    def __init__(self, site: SiteConfig) -> None:
        self.site = site
        self.registry = site.residency.container_registry.rstrip("/")
        infra = site.infrastructure
        self.region = infra.openstack_region
        self.zone = infra.openstack_availability_zone
        self.volume_type = infra.openstack_volume_type
        self.floating_ip = infra.openstack_floating_ip

    def check(self, type_: str, props: Mapping[str, object]) -> list[Violation]:
        """Every rule the resource breaks; empty when it keeps residency."""
        props = _plain(props)  # type: ignore[assignment]
        found: list[Violation] = []
        for where, ref, is_registry in image_references(props):
            # A registry override names the registry (the host, or the host and a path under it); an image names
            # the whole reference, which must lie under the in-country registry's path.
            ok = (_registry_host(ref) == _registry_host(self.registry) and (
                "/" not in ref.rstrip("/") or _in_registry(ref.rstrip("/") + "/", self.registry))
            ) if is_registry else _in_registry(ref, self.registry)
            if not ok:
                found.append(Violation(IMAGE_RULE, f"{where}={ref!r}",
                                       f"images from the in-country registry {self.registry}/..."))
        if type_.startswith("kubernetes:helm.sh/"):
            found += self._check_chart(props)
        if type_ == "kubernetes:core/v1:Service":
            spec = props.get("spec")
            if isinstance(spec, Mapping) and spec.get("type") == "LoadBalancer" and not self._gateway_lb(props):
                found.append(Violation(LOADBALANCER_RULE, "spec.type='LoadBalancer'",
                                       "ClusterIP or NodePort; traffic enters through the in-country gateway (whose "
                                       "LoadBalancer admits inCountryCidrs only)"))
        if type_.startswith("kubernetes:helm.sh/"):
            for path, node in _walk(props.get("values") or {}):
                if path and path[-1] == "type" and node == "LoadBalancer":
                    found.append(Violation(LOADBALANCER_RULE, f"values.{'.'.join(path)}='LoadBalancer'",
                                           "ClusterIP or NodePort; traffic enters through the in-country gateway"))
        if type_.startswith("openstack:") or type_ == "pulumi:providers:openstack":
            found += self._check_openstack(type_, props)
        return found

    def _gateway_lb(self, props: Mapping[str, object]) -> bool:
        """The kit's own gateway may be a LoadBalancer, admitting in-country networks only."""
        meta, spec = props.get("metadata"), props.get("spec")
        if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
            return False
        sources = spec.get("loadBalancerSourceRanges")
        return ((meta.get("namespace"), meta.get("name")) == (GATEWAY_NAMESPACE, GATEWAY_NAME)
                and isinstance(sources, list) and bool(sources)
                and set(sources) <= set(self.site.residency.in_country_cidrs))

    def _check_chart(self, props: Mapping[str, object]) -> list[Violation]:
        """A chart comes from this checkout or from an in-country chart store, never from the internet."""
        found = []
        refs = [("chart", _known_str(props.get("chart")))]
        opts = props.get("repositoryOpts")
        if isinstance(opts, Mapping):
            refs.append(("repositoryOpts.repo", _known_str(opts.get("repo"))))
        for where, ref in refs:
            if not ref or "://" not in ref:
                continue  # a local chart directory, or a chart name inside the repository checked here
            host = host_of_url(ref)
            if not host or not (_in_registry(ref.split("://", 1)[1], self.registry) or is_in_country(self.site, host)):
                found.append(Violation(CHART_RULE, f"{where}={ref!r}",
                                       f"a chart in this checkout, oci://{self.registry}/... or an in-country host"))
        return found

    def _check_openstack(self, type_: str, props: Mapping[str, object]) -> list[Violation]:
        found = []
        provider = self.site.infrastructure.provider
        if provider != "openstack":
            found.append(Violation(PLACEMENT_RULE, f"an OpenStack resource on an {provider} site",
                                   "no cloud resources: this site's machines are the hosts the stack lists"))
        if type_ == "openstack:networking/secGroupRule:SecGroupRule":
            prefix = _known_str(props.get("remoteIpPrefix"))
            direction = props.get("direction")
            if prefix in OPEN_TO_ALL or (prefix and _is_everything(prefix)):
                found.append(Violation(OPEN_RULE_RULE, f"{direction} rule remoteIpPrefix={prefix!r}",
                                       "a named network: adminCidrs for SSH, inCountryCidrs for the API and egress"))
            elif direction == "ingress" and not prefix and not props.get("remoteGroupId"):
                found.append(Violation(OPEN_RULE_RULE, "an ingress rule with no remoteIpPrefix (every address)",
                                       "a named network or the site's own security group"))
        if type_ in ("openstack:compute/instance:Instance", "openstack:blockstorage/volume:Volume",
                     "pulumi:providers:openstack"):
            region = _known_str(props.get("region"))
            if self.region and region and region != self.region:
                found.append(Violation(PLACEMENT_RULE, f"region={region!r}",
                                       f"the in-country region {self.region} (openstackRegion)"))
            zone = _known_str(props.get("availabilityZone"))
            if type_ != "pulumi:providers:openstack" and self.zone and zone != self.zone:
                found.append(Violation(PLACEMENT_RULE, f"availabilityZone={zone!r}",
                                       f"the availability zone {self.zone} (openstackAvailabilityZone)"))
        if (type_ == "openstack:blockstorage/volume:Volume" and self.site.residency.encryption_at_rest_required
                and self.volume_type and props.get("volumeType") != self.volume_type):
            found.append(Violation(VOLUME_RULE, f"volumeType={props.get('volumeType')!r}",
                                   f"the encrypted volume type {self.volume_type} (openstackVolumeType)"))
        if type_ == "openstack:networking/floatingIp:FloatingIp" and not self.floating_ip:
            found.append(Violation(FLOATING_IP_RULE, "a floating IP",
                                   "none unless the stack sets openstackFloatingIp: true"))
        return found

    def transform(self, args: pulumi.ResourceTransformArgs) -> None:
        """The stack transform: refuse a resource that breaks residency; never rewrite one."""
        violations = self.check(args.type_, args.props or {})
        if violations:
            raise ResidencyError("\n".join(v.message(args.type_, args.name) for v in violations))


def _is_everything(prefix: str) -> bool:
    try:
        return ipaddress.ip_network(prefix, strict=False).prefixlen == 0
    except ValueError:
        return False


def install(site: SiteConfig) -> ResidencyPolicy:
    """Register the policy as a stack transform; call it before any resource is created."""
    policy = ResidencyPolicy(site)
    pulumi.runtime.register_resource_transform(policy.transform)
    return policy


# --- the state backend ---------------------------------------------------------------------------------


def backend_approved(site: SiteConfig, url: str) -> bool:
    """file:// or s3://...?endpoint=<in-country host>, the kinds `sovkit validate` approves."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return True
    if parsed.scheme == "s3":
        endpoint = parse_qs(parsed.query).get("endpoint", [""])[0]
        return bool(endpoint) and is_in_country(site, host_of_url("https://" + endpoint) or "")
    return False


def _same_backend(a: str, b: str) -> bool:
    pa, pb = urlparse(a), urlparse(b)
    if pa.scheme != pb.scheme:
        return False
    if pa.scheme == "file":
        return os.path.normpath(pa.netloc + pa.path) == os.path.normpath(pb.netloc + pb.path)
    endpoint_a = parse_qs(pa.query).get("endpoint", [""])[0]
    endpoint_b = parse_qs(pb.query).get("endpoint", [""])[0]
    return (pa.netloc, pa.path.rstrip("/"), endpoint_a) == (pb.netloc, pb.path.rstrip("/"), endpoint_b)


def check_backend(site: SiteConfig, environ: Mapping[str, str] | None = None) -> str:
    """Refuse a live state backend that is not the site's approved one; return what was checked.

    The schema has already approved the stack's `stateBackend` (or its written waiver). The engine does not tell
    a program which backend it logged in to; the CLI does when PULUMI_BACKEND_URL is set, so that is checked
    when present and the returned line says which case applied."""
    environ = os.environ if environ is None else environ
    declared = site.residency.state_backend
    live = environ.get(BACKEND_ENV, "").strip()
    if not live:
        return (f"state backend: stack declares {declared} (approved by sovkit validate); the live backend was not "
                f"reported ({BACKEND_ENV} unset): run `pulumi whoami -v` to confirm it, or set {BACKEND_ENV}")
    if not backend_approved(site, live) and not site.residency.state_backend_waiver:
        raise ResidencyError(
            f"residency: the state backend in use breaks {BACKEND_RULE}: found {BACKEND_ENV}={live!r}; allowed: "
            f"the stack's stateBackend {declared}. State holds secrets and the whole inventory; "
            f"run `pulumi login {declared}` and try again. Nothing was changed.")
    if not _same_backend(live, declared):
        raise ResidencyError(
            f"residency: the state backend in use breaks {BACKEND_RULE}: found {BACKEND_ENV}={live!r}; allowed: "
            f"the stack's stateBackend {declared}. Run `pulumi login {declared}` (or fix stateBackend) and try "
            "again. Nothing was changed.")
    return f"state backend: {live} (reported by {BACKEND_ENV}) is the stack's approved backend"
