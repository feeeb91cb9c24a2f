"""RKE2, the cluster the kit bootstraps in kubernetes mode when the stack names no existing cluster: where its
air-gap artifacts come from, what pins them, and the address its API is reached at. What the rke2 role would refuse
(sovkit/config/checks.py), `sovkit validate` refuses here first, on the stack keys."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from sovkit.config import checks
from sovkit.config.schema import PROJECT
from sovkit.config.site import SiteConfig
from sovkit.config.types import is_address
from sovkit.errors import Problem, short

# The air-gap tarball method's three files (docs.rke2.io, "Air-Gap Install"), amd64.
TARBALL = "rke2.linux-amd64.tar.gz"
IMAGES = "rke2-images.linux-amd64.tar.zst"
CHECKSUMS = "sha256sum-amd64.txt"
ARTIFACTS = (TARBALL, IMAGES, CHECKSUMS)
SUPERVISOR_PORT = 9345  # servers and agents register with the first server here


def runs_rke2(site: SiteConfig) -> bool:
    """The kit bootstraps RKE2: kubernetes mode on hosts, with no existing cluster's kubeconfig."""
    return site.platform.mode == "kubernetes" and site.platform.kubeconfig is None


@dataclass(frozen=True)
class SnapshotStore:
    """Where rke2-server copies etcd snapshots: the site's in-country S3 state store (its stateBackend)."""

    endpoint: str
    bucket: str
    region: str | None


def snapshot_store(site: SiteConfig) -> SnapshotStore | None:
    """The S3 store etcd snapshots are copied to (etcd-s3): on an RKE2 site whose stateBackend is an s3:// store with
    an endpoint (`state_backend` has judged it in-country, or it is waived); None where they stay on the nodes."""
    if not runs_rke2(site):
        return None
    state = urlparse(site.residency.state_backend)
    query = parse_qs(state.query)
    endpoint = query.get("endpoint", [""])[0]
    if state.scheme != "s3" or not endpoint:
        return None
    return SnapshotStore(endpoint, state.netloc, query.get("region", [None])[0])


def artifacts_url(site: SiteConfig) -> str:
    """The folder of the release's artifacts (with a trailing /): the stack's rke2Artifacts, else the aptMirror's
    server at /rke2/<rke2Version>/ (beside /debian; for a file:// mirror, the bundle's rke2/<version>/ beside its
    apt/)."""
    if site.platform.rke2_artifacts:
        return site.platform.rke2_artifacts.rstrip("/") + "/"
    mirror = site.residency.apt_mirror.rstrip("/")
    scheme, rest = mirror.split("://", 1)
    host, _, path = rest.partition("/")
    host = host.rpartition("@")[2]  # never the mirror's credentials (validate refuses them on aptMirror itself)
    parent = posixpath.dirname("/" + path) if path else "/"
    return f"{scheme}://{host}{posixpath.join(parent, 'rke2', site.platform.rke2_version or '')}/"


def api_address(site: SiteConfig, addresses: Mapping[str, str] | None = None) -> str | None:
    """The address or name the API and the servers' join are reached at: the stack's rke2ApiAddress, else the first
    control-plane node's address (None before a cloud has given it)."""
    if site.platform.rke2_api_address:
        return site.platform.rke2_api_address
    first = sorted(site.nodes_with_role("control_plane"), key=lambda n: n.name)[:1]
    if not first:
        return None
    return (addresses or {}).get(first[0].name) or first[0].address


def _key(path: str) -> str:
    return f"{PROJECT}:{path}"


def rke2_inputs(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """The artifacts from the in-country mirror, their checksum file pinned, the API address in-country; none of
    these keys on a site that bootstraps no RKE2."""
    platform, res = site.platform, site.residency
    if not runs_rke2(site):
        for name, value in (("rke2Artifacts", platform.rke2_artifacts),
                            ("rke2ChecksumsSha256", platform.rke2_checksums_sha256),
                            ("rke2ArtifactsFolder", platform.rke2_artifacts_folder),
                            ("rke2ApiAddress", platform.rke2_api_address)):
            if value:
                yield Problem(_key(name), "set", "only when sovkit bootstraps RKE2 (mode kubernetes, no kubeconfig)")
        return
    for finding in checks.artifact_mirror(artifacts_url(site), list(res.in_country_cidrs),
                                          list(res.in_country_domains)):
        yield Problem(_key("rke2Artifacts"), finding.found, finding.allowed,
                      fix="" if platform.rke2_artifacts else "the default follows aptMirror; set rke2Artifacts")
    for finding in checks.sha256_pin(platform.rke2_checksums_sha256):
        yield Problem(_key("rke2ChecksumsSha256"), finding.found, finding.allowed,
                      fix=f"the digest of the release's {CHECKSUMS}: every artifact is verified against that file "
                          "before it is unpacked")
    if platform.rke2_artifacts_folder and not platform.rke2_artifacts_folder.startswith("/"):
        yield Problem(_key("rke2ArtifactsFolder"), short(platform.rke2_artifacts_folder), "an absolute path on the "
                      "machine building the offline bundle")
    address = platform.rke2_api_address
    if address and not checks.in_country(address, res.in_country_cidrs, res.in_country_domains):
        kind = "address" if is_address(address) else "name"
        yield Problem(_key("rke2ApiAddress"), short(address), "an address inside inCountryCidrs or a name under "
                      f"inCountryDomains: the cluster's API is reached in-country (this {kind} is not)")


def etcd_snapshot_access(site: SiteConfig, plain_keys: frozenset[str]) -> Iterable[Problem]:
    """rke2-server copies etcd snapshots to the S3 state store with the stack's credentials (etcd-s3, written to
    /etc/default/rke2-server): required exactly when it copies them there, refused where nothing would read them.
    A pulumiSecret the file also holds in plain text is refused by cluster.model_store_access (cluster.secret_refs
    names these too)."""
    creds = site.platform.etcd_snapshot_credentials
    store = snapshot_store(site)
    if store is not None and creds is None:
        yield Problem(_key("etcdSnapshotCredentials"), "nothing",
                      f"the state store's access key id and secret access key (etcd snapshots go to bucket "
                      f"{store.bucket} at {store.endpoint}), each as {{pulumiSecret: NAME}} or "
                      "{file: /absolute/path}",
                      fix="pulumi config set --secret NAME ...; then etcdSnapshotCredentials: {accessKeyId: "
                          "{pulumiSecret: NAME}, secretAccessKey: {pulumiSecret: NAME2}}: rke2-server uploads "
                          "each snapshot with them")
    elif store is None and creds is not None:
        why = ("its stateBackend is not an s3:// store with an endpoint: snapshots stay on the servers"
               if runs_rke2(site) else "sovkit bootstraps no RKE2 on this site: mode hosts, or an existing cluster's "
               "kubeconfig")
        yield Problem(_key("etcdSnapshotCredentials"), "set",
                      f"only on an RKE2 site whose stateBackend is an s3://...?endpoint= store ({why}; nothing would "
                      "read them)",
                      fix="remove etcdSnapshotCredentials")


RULES = (rke2_inputs, etcd_snapshot_access)
