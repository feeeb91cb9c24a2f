"""The stack-file schema: the single source of truth every rendering derives from.

A stack file is a Pulumi stack file: each key below is one Pulumi config key in the project namespace
(`sovereign-ai:<key>`), so `pulumi config set --path` edits it and the Pulumi program reads it. The keys
are grouped here into sections (site, infrastructure, residency, ...) for the code that uses them; the
section a key belongs to is where its field is declared. Field descriptions become the declarations in
Pulumi.yaml and the help of `sovkit show`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sovkit.config.types import (
    Cidr,
    CountryCode,
    Email,
    Host,
    HostPort,
    IpAddress,
    Language,
    Revision,
    Role,
    Sha256,
    Share,
    Slug,
    StrictModel,
)
from sovkit.config.vendors import vendor_names
from sovkit.data import load_yaml

PROJECT = "sovereign-ai"

Provider = Literal["onprem", "openstack", "local"]
Mode = Literal["hosts", "kubernetes"]
Vendor = Literal[tuple(vendor_names())]  # one per data file under sovkit/data/vendors/
Quantization = Literal["none", "fp8", "awq", "gptq", "w8a8"]
Task = Literal[tuple(load_yaml("tasks.yaml"))]  # what a model serves (sovkit/data/tasks.yaml)
Use = Literal[tuple(load_yaml("licences.yaml")["uses"])]  # the uses a site serves (sovkit/data/licences.yaml)


# --- nested objects -------------------------------------------------------------------------------


class AcceleratorSlot(StrictModel):
    model: str | None = Field(None, description="Model from sovkit's accelerator catalogue, e.g. H100-SXM5-80GB")
    count: int = Field(0, ge=0, le=16, description="Accelerators of that model in one machine")


class HostSpec(StrictModel):
    address: IpAddress = Field(description="Management address the kit reaches the host on")
    role: Role = Field(description="control_plane | gpu_worker | cpu_worker | storage")
    accelerator: AcceleratorSlot = Field(default_factory=AcceleratorSlot)
    ssh_user: str = Field("sovkit", min_length=1, description="Account Ansible logs in with")
    ssh_port: int = Field(22, ge=1, le=65535)


class NodeGroup(StrictModel):
    flavor: str = Field(min_length=1, description="OpenStack flavor of the group's servers")
    image: str = Field(min_length=1, description="Glance image (Debian 12) of the group's servers")
    count: int = Field(ge=0, le=200)
    accelerator: AcceleratorSlot = Field(default_factory=AcceleratorSlot)
    volume_gb: int = Field(200, ge=20, le=65536, description="Data volume size, of the encrypted volume type")
    login_user: str = Field("debian", min_length=1, pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
                            description="The image's login user cloud-init creates (Debian cloud images: debian)")


class LicenceWaiver(StrictModel):
    """Why a site serves a model whose licence does not allow a use the site serves, and who approved it: the
    evidence pack records both."""

    justification: str = Field(min_length=40, description="Why the site may serve the model for its uses regardless "
                               "(e.g. a separate licence from the publisher, with its reference)")
    approver: str = Field(min_length=3, description="Who approved it: a role, such as Chief Legal Adviser")

    @field_validator("justification", "approver")
    @classmethod
    def _written(cls, value: str) -> str:
        if not value.strip() or value != " ".join(value.split()):
            raise ValueError("written words, without leading, trailing or repeated blanks")
        return value


class EvaluationSet(StrictModel):
    """One of the site's own evaluation sets: JSON lines of {"prompt": ..., "answer": ...}, scored by exact match."""

    source: str = Field(min_length=1, description="Where the set lies in the in-country model store (a .jsonl file)")
    digest: Sha256 = Field(description="sha256: and the SHA-256 of the file, so the gate scores exactly this set")
    language: Language = Field(description="BCP-47 tag of the language the set tests")


class ModelEvaluation(StrictModel):
    """The local-language quality gate of a model: tenants are granted it only once it reaches each threshold."""

    sets: dict[Slug, EvaluationSet] = Field(min_length=1, description="The site's evaluation sets, by name")
    thresholds: dict[Language, Share] = Field(
        min_length=1, description="Least exact-match score (0 to 1) per language, one for each language it serves")


class ModelSpec(StrictModel):
    catalogue: str = Field(min_length=1, description="Entry of sovkit's model catalogue this model is")
    source: str = Field(min_length=1, description="Where the weights lie in the in-country model store")
    revision: Revision = Field(description="Git commit or sha256 digest of the weights")
    quantization: Quantization = Field("none", description="none (original weights), fp8, awq, gptq or w8a8")
    task: Task | None = Field(None, description=" | ".join(load_yaml("tasks.yaml"))
                              + "; default: the catalogue entry's first task")
    max_context: int = Field(ge=256, le=1_048_576, description="Longest context served, in tokens")
    languages: list[Language] = Field(min_length=1, description="BCP-47 tags of the languages it serves")
    replicas: int = Field(1, ge=1, le=64)
    tensor_parallel: int | Literal["auto"] = Field("auto", description="GPUs one replica spans, or auto")
    node_role: Role | None = Field(None, description="Nodes it runs on; default gpu_worker, cpu_worker for cpu sites")
    signature: str | None = Field(
        None, description="Its OpenSSF model signature in the model store: a path relative to source (model.sig "
                          "beside the weights) or a location under the store; verified before a server starts")
    signer: str | None = Field(
        None, description="Path (absolute, or relative to the project folder) of the PEM elliptic-curve public "
                          "key or certificate(s) the signature must verify with (the publisher's or the site's model "
                          "team's)")
    evaluation: ModelEvaluation | None = Field(
        None, description="Quality gate before tenants are granted it; none: granted without one")
    licence_waiver: LicenceWaiver | None = Field(
        None, description="Only for a model whose licence does not allow a use the site serves: why, and who approved")

    @model_validator(mode="after")
    def _tensor_parallel_positive(self) -> ModelSpec:
        if isinstance(self.tensor_parallel, int) and self.tensor_parallel < 1:
            raise ValueError("tensorParallel must be a positive whole number or auto")
        return self


class RateLimit(StrictModel):
    requests_per_minute: int = Field(ge=1, le=1_000_000)
    burst: int = Field(0, ge=0, le=100_000, description="Requests allowed above the rate in a burst")


class SecretRef(StrictModel):
    """Where a secret lives: a secret Pulumi config key or a file on the machine running sovkit. Never the secret."""

    pulumi_secret: str | None = Field(None, description="Name of a secret Pulumi config key holding it")
    file: str | None = Field(None, description="Absolute path of a file holding it on the machine running sovkit")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.pulumi_secret is None) == (self.file is None):
            raise ValueError("give exactly one of pulumiSecret or file")
        if self.file is not None and not self.file.startswith("/"):
            raise ValueError("file must be an absolute path")
        return self


class ApiKeyRef(SecretRef):
    """Where a tenant's API key lives. Never the key itself."""


class S3Credentials(StrictModel):
    """An S3-compatible store's access key id and secret access key; where each lives, never the values."""

    access_key_id: SecretRef = Field(description="The access key id (AWS_ACCESS_KEY_ID)")
    secret_access_key: SecretRef = Field(description="The secret access key (AWS_SECRET_ACCESS_KEY)")


class ModelStoreCredentials(S3Credentials):
    """The S3 credentials the cluster's fetchers read the model store with (kubernetes mode); where each lives."""


class EtcdSnapshotCredentials(S3Credentials):
    """The S3 credentials rke2-server copies etcd snapshots to the state store with (an RKE2 site whose stateBackend
    is an s3:// store with an endpoint); where each lives. Given to rke2-server in /etc/default/rke2-server."""


class TokenBudget(StrictModel):
    """Tokens a tenant may spend per day and per month (the gateway host's calendar), counted as the model servers
    count them and weighted; once spent, the gateway answers 429 until the period turns."""

    tokens_per_day: int | None = Field(None, ge=1, description="Weighted tokens a day; none: no daily budget")
    tokens_per_month: int | None = Field(None, ge=1, description="Weighted tokens a month; none: no monthly budget")
    prompt_weight: float = Field(1.0, gt=0, le=1000, description="What one prompt token counts for")
    completion_weight: float = Field(1.0, gt=0, le=1000, description="What one completion token counts for")

    @model_validator(mode="after")
    def _a_period(self) -> TokenBudget:
        if self.tokens_per_day is None and self.tokens_per_month is None:
            raise ValueError("give tokensPerDay, tokensPerMonth or both")
        return self


class Tenant(StrictModel):
    models: list[str] = Field(min_length=1, description="Served model names the tenant may call")
    rate_limit: RateLimit
    api_key: ApiKeyRef
    budget: TokenBudget | None = Field(None, description="Token budgets; none: the rate limit alone")


class AptRepository(StrictModel):
    """A vendor's package repository, mirrored in-country (e.g. NVIDIA's CUDA repository for a newer driver)."""

    url: str = Field(pattern=r"^(https?|file)://", description="In-country URL of the mirrored repository")
    suites: list[str] = Field(default_factory=lambda: ["/"], min_length=1,
                              description="Suites, e.g. [bookworm]; ['/'] for a flat repository")
    components: list[str] = Field(default_factory=list, description="Components; none for a flat repository")
    signing_key: str | None = Field(None, description="Absolute path, on the machine running sovkit, of the "
                                    "OpenPGP public key that signs it (required unless the URL is file://)")


class AlertReceiver(StrictModel):
    email: Email | None = None
    webhook: str | None = Field(None, pattern=r"^https?://", description="http(s) URL of an in-country receiver")

    @model_validator(mode="after")
    def _exactly_one(self) -> AlertReceiver:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give exactly one of email or webhook")
        return self


class SmtpRelay(StrictModel):
    address: HostPort = Field(description="host:port of the site's in-country mail relay, which takes alert mail")
    require_tls: bool = Field(
        True, description="TLS to the relay: on port 465 from the first byte, on any other port by STARTTLS; "
                          "false only for a relay on the site's own network that offers none")
    sender: Email | None = Field(None, description="From address of alert mail; default sovkit-alerts@ the domain "
                                                   "of the first email receiver")


# --- sections: one field per Pulumi config key ------------------------------------------------------


class SiteSection(StrictModel):
    site_name: Slug = Field(description="Short name of the site, used in resource and host names")
    country: CountryCode = Field(description="ISO 3166-1 alpha-2 code of the country the site is in")
    region: str = Field(min_length=1, description="Province, state or region")
    city: str = Field(min_length=1, description="City of the data centre")
    profile: str = Field(min_length=2, description="Country profile the site follows (sovkit profiles), e.g. za")
    operator_name: str = Field(min_length=1, description="Team that operates the site")
    operator_email: Email = Field(description="Contact of the operating team")


class InfrastructureSection(StrictModel):
    provider: Literal["onprem", "openstack", "local"] = Field(description="onprem | openstack | local")
    hosts: dict[Slug, HostSpec] | None = Field(None, description="onprem: the existing hosts, by name")
    openstack_cloud: str | None = Field(None, description="openstack: clouds.yaml entry of the in-country cloud")
    openstack_region: str | None = Field(None, description="openstack: region the servers must be in")
    openstack_availability_zone: str | None = Field(None, description="openstack: availability zone")
    openstack_network: str | None = Field(None, description="openstack: tenant network the servers join")
    openstack_volume_type: str | None = Field(None, description="openstack: encrypted (LUKS) Cinder volume type")
    openstack_floating_ip: bool = Field(False, description="openstack: give the gateway a floating IP")
    openstack_floating_ip_pool: str | None = Field(
        None, description="openstack: external network the gateway's floating IP comes from")
    openstack_ssh_public_key: str | None = Field(
        None, description="openstack: path of the public key the servers' login user takes")
    openstack_node_groups: dict[Role, NodeGroup] | None = Field(None, description="openstack: servers per role")
    local_nodes: dict[Role, int] | None = Field(None, description="local: containers per role on this machine")
    local_network_cidr: Cidr | None = Field(None, description="local: subnet of the internal podman network")


class ResidencySection(StrictModel):
    in_country_cidrs: list[Cidr] = Field(min_length=1, description="Networks in the country egress may reach")
    in_country_domains: list[Host] = Field(
        default_factory=list, description="DNS suffixes of in-country services (mirror, registry, store, receivers)"
    )
    allowed_endpoints: dict[str, str] = Field(
        default_factory=dict, description="Extra egress, address:port -> written justification"
    )
    # Addresses, not names: each host's firewall admits NTP to exactly these addresses, and an auditor reads them
    # here; a name would make the allowlist depend on what DNS answers on the day the rules are loaded.
    ntp_servers: list[IpAddress] = Field(min_length=1, description="In-country NTP servers, by address")
    dns_resolvers: list[IpAddress] = Field(min_length=1, description="Approved DNS resolvers, by address")
    apt_mirror: str = Field(pattern=r"^(https?|file)://", description="In-country Debian mirror URL")
    apt_mirror_key: str | None = Field(
        None, description="OpenPGP key of a mirror that re-signs Debian (default: Debian's keyring)")
    apt_repositories: dict[Slug, AptRepository] = Field(
        default_factory=dict, description="Vendor repositories mirrored in-country, by name")
    trusted_ca_files: list[str] = Field(
        default_factory=list,
        description="Paths of in-country CA certificates (PEM) the hosts trust, e.g. the national PKI")
    container_registry: str = Field(min_length=1, description="In-country container registry, host[:port][/path]")
    model_store: str = Field(min_length=1, description="In-country model store: s3://, https:// URL or a path")
    model_store_credentials: ModelStoreCredentials | None = Field(
        None, description="kubernetes, s3:// store: its access key id and secret")
    state_backend: str = Field(description="Pulumi state backend URL: file:// or in-country s3://...?endpoint=")
    state_backend_waiver: str | None = Field(
        None, min_length=40, description="Justification for a state backend outside the approved kinds"
    )
    log_retention_days: int | None = Field(None, ge=1, le=3650, description="Days logs are kept; profile default")
    encryption_at_rest_required: bool = Field(True, description="Refuse data volumes not on LUKS/dm-crypt")
    admin_cidrs: list[Cidr] = Field(min_length=1, description="Networks SSH is admitted from")
    log_collector: str | None = Field(
        None, description="In-country journal collector (systemd-journal-remote), https://host:port")


class PlatformSection(StrictModel):
    mode: Literal["hosts", "kubernetes"] = Field(description="hosts (1-4 servers, systemd) | kubernetes (RKE2)")
    rke2_version: str | None = Field(
        None, pattern=r"^v1\.\d+\.\d+\+rke2r\d+$", description="kubernetes: RKE2 release, e.g. v1.33.5+rke2r1"
    )
    # RKE2's air-gap artifacts (rke2.linux-amd64.tar.gz, rke2-images.linux-amd64.tar.zst, sha256sum-amd64.txt): where
    # the hosts fetch them (https://, http:// or file://; default: the aptMirror's server, /rke2/<rke2Version>/),
    # the digest that pins them, and a folder of them `sovkit bundle` verifies and carries (sovkit/config/rke2.py).
    rke2_artifacts: str | None = Field(
        None, description="kubernetes (RKE2): in-country folder URL of the air-gap artifacts")
    rke2_checksums_sha256: str | None = Field(
        None, description="kubernetes (RKE2): sha256: digest of the release's sha256sum-amd64.txt")
    rke2_artifacts_folder: str | None = Field(
        None, description="kubernetes (RKE2): folder of the artifacts `sovkit bundle` carries")
    # The API's address or name: in its certificate (tls-san), the servers' join and Pulumi's kubeconfig.
    rke2_api_address: str | None = Field(
        None, description="kubernetes (RKE2): API address or name; default: first control plane's")
    etcd_snapshot_credentials: EtcdSnapshotCredentials | None = Field(
        None, description="RKE2, s3:// stateBackend: the etcd snapshots' key id and secret")
    cis_profile: bool = Field(True, description="kubernetes: run RKE2 with its CIS profile")
    cluster_cidr: Cidr = Field("10.42.0.0/16", description="kubernetes: pod network")
    service_cidr: Cidr = Field("10.43.0.0/16", description="kubernetes: service network")
    kubeconfig: SecretRef | None = Field(
        None, description="kubernetes: an existing cluster's kubeconfig (secret or file), not RKE2")
    gateway_exposure: Literal["ingress", "loadBalancer"] = Field(
        "ingress", description="kubernetes: how callers reach the gateway: ingress (the cluster's ingress controller, "
                               "TLS again to the gateway) or loadBalancer (a Service of type LoadBalancer)")
    gateway_hostname: Host | None = Field(
        None, description="kubernetes: the gateway's name (the Ingress host, in its certificate)")
    model_store_link_mbps: int = Field(
        1000, ge=10, le=1_000_000, description="kubernetes: megabits per second a node fetches weights from the model "
                                               "store at; sizes the Helm wait and the startup probe (default 1000)")


class AcceleratorSection(StrictModel):
    accelerator: Vendor = Field(description=" | ".join(vendor_names()))
    accelerator_driver_version: str | None = Field(None, description="NVIDIA driver or AMDGPU driver version")
    accelerator_toolkit_version: str | None = Field(
        None, description="CUDA or ROCm version; in hosts mode the runtime lock's")


class ServingSection(StrictModel):
    models: dict[Slug, ModelSpec] = Field(min_length=1, description="Models to serve, by served name")
    served_uses: list[Use] = Field(
        default_factory=lambda: ["public-service"], min_length=1,
        description="What the site serves its models for: " + " | ".join(load_yaml("licences.yaml")["uses"])
                    + "; each model's licence must allow every one (default: public-service)")
    tenants: dict[Slug, Tenant] = Field(min_length=1, description="API consumers, by name")


class MonitoringSection(StrictModel):
    monitoring_retention_days: int = Field(30, ge=1, le=3650, description="Days Prometheus keeps metrics")
    alert_receivers: dict[Slug, AlertReceiver] = Field(
        default_factory=dict, description="Where alerts go; in-country receivers only"
    )
    smtp_relay: SmtpRelay | None = Field(None, description="In-country mail relay for email receivers (required "
                                                            "with any)")


SECTIONS: dict[str, type[StrictModel]] = {
    "site": SiteSection,
    "infrastructure": InfrastructureSection,
    "residency": ResidencySection,
    "platform": PlatformSection,
    "accelerator": AcceleratorSection,
    "serving": ServingSection,
    "monitoring": MonitoringSection,
}
