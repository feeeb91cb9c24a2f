"""ClusterGateway (mode kubernetes): hosts mode's tenant gateway in the cluster (sovkit/render/cluster_gateway.py).

Its certificate is signed by a site CA Pulumi keeps in the stack's state (as hosts mode keeps one on the controller):
the `gatewayCa` output is what callers trust. Tenants' keys never reach the cluster: the tenants Secret holds their
SHA-256 hashes in tenants.json (the gateway compares hashes), beside the include that presents the site's key to the
model servers.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from sovkit.config.site import SiteConfig
from sovkit.render import cluster_gateway as render
from sovkit.render.cluster import GATEWAY_NAMESPACE

TYPE = "sovkit:kubernetes:ClusterGateway"
CA_VALIDITY_HOURS = 10 * 365 * 24
CERT_VALIDITY_HOURS = 365 * 24
CERT_RENEWAL_HOURS = 30 * 24  # renewed by the `pulumi up` within 30 days of its expiry


class ClusterGateway(pulumi.ComponentResource):
    """Site CA and certificate, tenants Secret, ConfigMap, Deployment, Service and (ingress) Ingress."""

    def __init__(self, name: str, site: SiteConfig, *, tenant_keys: dict[str, Any], upstream_key: pulumi.Input[str],
                 provider: k8s.Provider, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        mine = pulumi.ResourceOptions(parent=self)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P384", opts=mine)
        self.ca = tls.SelfSignedCert(
            f"{name}-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
            subject={"common_name": f"sovkit site CA ({site.name})", "organization": site.site.operator_name},
            validity_period_hours=CA_VALIDITY_HOURS, allowed_uses=["cert_signing", "crl_signing"], opts=mine)
        key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=mine)
        names = [n for n in (site.platform.gateway_hostname,) if n] + [
            f"{render.NAME}.{GATEWAY_NAMESPACE}.svc", f"{render.NAME}.{GATEWAY_NAMESPACE}.svc.cluster.local"]
        request = tls.CertRequest(f"{name}-csr", private_key_pem=key.private_key_pem,
                                  subject={"common_name": names[0]}, dns_names=names, opts=mine)
        cert = tls.LocallySignedCert(
            f"{name}-cert", cert_request_pem=request.cert_request_pem, ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=self.ca.cert_pem, validity_period_hours=CERT_VALIDITY_HOURS,
            early_renewal_hours=CERT_RENEWAL_HOURS, allowed_uses=["server_auth", "digital_signature"], opts=mine)
        self.tls = k8s.core.v1.Secret(
            f"{name}-tls", metadata={"name": render.TLS_SECRET, "namespace": GATEWAY_NAMESPACE},
            type="kubernetes.io/tls", string_data={"tls.crt": cert.cert_pem, "tls.key": key.private_key_pem,
                                                   "ca.crt": self.ca.cert_pem}, opts=k8s_opts)
        hashes = pulumi.Output.all(**tenant_keys).apply(render.key_hashes) if tenant_keys else {}
        self.tenants = k8s.core.v1.Secret(
            f"{name}-tenants", metadata={"name": render.TENANTS_SECRET, "namespace": GATEWAY_NAMESPACE},
            type="Opaque", string_data={
                "tenants.json": pulumi.Output.secret(pulumi.Output.from_input(hashes).apply(
                    lambda h: render.tenants_json(site, h))),
                "upstream-auth.conf": pulumi.Output.secret(pulumi.Output.from_input(upstream_key).apply(
                    render.upstream_auth))}, opts=k8s_opts)
        files = render.config_files(site)
        self.config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata={"name": render.CONFIG_MAP, "namespace": GATEWAY_NAMESPACE}, data=files,
            opts=k8s_opts)
        # The pods roll when the configuration or the tenants change (hashes only, from state).
        checksum = pulumi.Output.all(pulumi.Output.from_input(hashes), self.tls.metadata).apply(
            lambda parts: hashlib.sha256(json.dumps([files, parts[0]], sort_keys=True).encode()).hexdigest())
        labels = render.labels()
        meta = {"name": render.NAME, "namespace": GATEWAY_NAMESPACE, "labels": labels}
        after = pulumi.ResourceOptions(parent=self, provider=provider,
                                       depends_on=[*depends_on, self.tls, self.tenants, self.config])
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata={**meta, "annotations": render.SCANNER_WAIVERS},
            spec=checksum.apply(lambda c: render.deployment(site, c)), opts=after)
        self.service = k8s.core.v1.Service(f"{name}-service", metadata=meta, spec=render.service(site), opts=after)
        self.ingress: k8s.networking.v1.Ingress | None = None
        if site.platform.gateway_exposure == "ingress":
            self.ingress = k8s.networking.v1.Ingress(
                f"{name}-ingress", metadata={**meta, "annotations": render.ingress_annotations()},
                spec=render.ingress(site), opts=after)
            address = self.ingress.status.apply(_first_address)
        else:
            address = self.service.status.apply(_first_address)
        self.address = address
        self.endpoint = address.apply(lambda a: render.endpoint(site, a))
        self.register_outputs({"endpoint": self.endpoint, "address": self.address, "ca": self.ca.cert_pem})


def _first_address(status: Any) -> str | None:
    """The first address the cluster gave a LoadBalancer Service or an Ingress (None until it has one)."""
    balancer = _field(status, "load_balancer", "loadBalancer")
    ingress = _field(balancer, "ingress") or []
    first = ingress[0] if ingress else None
    return _field(first, "ip") or _field(first, "hostname")


def _field(value: Any, *names: str) -> Any:
    """A field of a status as the SDK gives it: a typed output object, or a plain map under mocks."""
    for name in names:
        found = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
        if found is not None:
            return found
    return None
