"""`sovkit up --stack local` and `sovkit down --stack local`: the whole kit on this machine.

up: the host image (built once, cached), the offline bundle, the tenants' keys, the site's hosts as podman
containers with systemd on an internal network (no way out), `playbooks/site.yml` (harden, serve, monitor),
then `sovkit verify`. Every phase is idempotent, so a re-run converges with nothing to change.
down: the hosts and the network go, and the settings podman changed on this machine come back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sovkit import ports
from sovkit.bundle.build import build_bundle
from sovkit.config import SiteConfig
from sovkit.converge import ConvergeError, converge
from sovkit.gate.rollout import GateRollout
from sovkit.hosts import Attachment, HostSpec, MachineSnapshot, NetworkSpec, Podman, default_cache_dir, ensure_image
from sovkit.hosts.lab import LabLock
from sovkit.phases import Phases, Progress
from sovkit.workspace import HOST_BUNDLE_DIR, SiteWorkspace, secret_file


class UpError(RuntimeError):
    """A phase of up/down that failed; the message says which, why, and where the log is."""


@dataclass(frozen=True)
class LocalSite:
    """Names and paths of a local site on this machine, all derived from its stack."""

    site: SiteConfig

    @property
    def workspace(self) -> SiteWorkspace:
        return SiteWorkspace.of(self.site.name)

    @property
    def state_dir(self) -> Path:
        return self.workspace.state_dir

    @property
    def network(self) -> NetworkSpec:
        cidr = self.site.infrastructure.local_network_cidr
        assert cidr, "the schema requires localNetworkCidr for provider local"
        return NetworkSpec(f"sovkit-{self.site.name}", cidr)

    @property
    def snapshot_file(self) -> Path:
        return self.workspace.machine_snapshot

    @property
    def serving_address(self) -> str:
        node = self.site.serving_nodes()[0]
        assert node.address
        return node.address


def _require_local(site: SiteConfig) -> None:
    if site.infrastructure.provider != "local":
        raise UpError(f"{site.source}: provider is {site.infrastructure.provider!r}; `sovkit up` runs only "
                      "provider local stacks on this machine (real sites: `pulumi up`). Nothing was changed.")


def ensure_tenant_keys(site: SiteConfig) -> list[Path]:
    """Make each tenant's key file that does not exist yet (0600 in a 0700 folder); returns those made."""
    made = []
    for tenant in site.serving.tenants.values():
        if not tenant.api_key.file:
            continue
        path = Path(tenant.api_key.file)
        if path.exists():
            continue
        secret_file(path)
        made.append(path)
    return made


def start_hosts(local: LocalSite, podman: Podman, image_tag: str, bundle: Path, progress: Progress) -> None:
    """The site's network and hosts; hosts already running are kept (a re-run changes nothing)."""
    podman.create_network(local.network)
    for node in local.site.nodes:
        if podman.container_running(node.name):
            continue
        progress(f"starting host {node.name} ({node.role}, {node.address})")
        assert node.address
        podman.start_host(HostSpec(node.name, image_tag, (Attachment(local.network.name, node.address),),
                                   (f"{bundle}:{HOST_BUNDLE_DIR}:ro",), labels={"io.sovkit.site": local.site.name}))


def run_verify(local: LocalSite) -> tuple[int, Path, str]:
    """`sovkit verify` of the site: its exit status, the report's folder and the site's verdict (its headline)."""
    from sovkit.verify.cli import run as verify_run
    from sovkit.verify.verdict import NOT_PROVEN

    out = local.workspace.compliance
    written = out / "report.json"
    written.unlink(missing_ok=True)  # a report there afterwards is this run's, not an earlier one's
    status = verify_run([str(local.site.source), "--output-dir", str(out)])
    if not written.exists():
        return status, out, f"{NOT_PROVEN}: sovkit verify wrote no report (exit {status})"
    return status, out, json.loads(written.read_text())["verdict_headline"]


@dataclass(frozen=True)
class UpResult:
    endpoint: str
    prometheus: str
    curl: str
    report: Path
    verify_status: int  # sovkit verify's exit status: 0 no check failed
    verdict: str  # the site's verdict, as the report's first line gives it
    seconds: dict[str, float]
    converge_log: Path
    gate: GateRollout | None = None  # the quality gate's verdicts (part of the converge phase)


def up(site: SiteConfig, progress: Progress = lambda _: None) -> UpResult:
    _require_local(site)
    local = LocalSite(site)
    phases = Phases()
    podman = Podman(default_cache_dir() / "podman")
    with phases.timed("host image", progress):
        image = ensure_image(podman)
    with phases.timed("bundle", progress):
        bundle = build_bundle(site, local.workspace.bundle, progress)
    with phases.timed("keys", progress):
        for path in ensure_tenant_keys(site):
            progress(f"made tenant key {path} (0600)")
    with LabLock(), phases.timed("hosts", progress):
        MachineSnapshot.save_once(local.snapshot_file)
        start_hosts(local, podman, image.tag, bundle.root, progress)
    with phases.timed("converge", progress):
        try:
            converged = converge(site, workspace=local.workspace, env=podman.env(), progress=progress)
        except ConvergeError as err:
            raise UpError(str(err)) from None
    with phases.timed("verify", progress):
        status, report, verdict = run_verify(local)
    # The curl's tenant: the most generous rate limit, so pasting it a few times does not meet a 429.
    spec = max((t for t in site.serving.tenants.values() if t.api_key.file),
               key=lambda t: t.rate_limit.requests_per_minute)
    model = spec.models[0]
    endpoint = f"https://{local.serving_address}:{ports.GATEWAY}/v1"
    curl = (f"curl --cacert {local.workspace.pki / 'ca.crt'} -H \"Authorization: Bearer $(cat "
            f"{spec.api_key.file})\" -H 'Content-Type: application/json' {endpoint}/chat/completions "
            f"-d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Habari\"}}], "
            f"\"max_tokens\": 16}}'")
    return UpResult(endpoint, f"http://{local.serving_address}:{ports.PROMETHEUS}", curl, report / "report.html",
                    status, verdict, phases.seconds, converged.log, converged.gate)


def down(site: SiteConfig, progress: Progress = lambda _: None) -> list[str]:
    """Remove the site's hosts and network and restore this machine's settings; returns what was done."""
    _require_local(site)
    local = LocalSite(site)
    podman = Podman(default_cache_dir() / "podman")
    done = []
    with LabLock():
        for node in reversed(site.nodes):
            if podman.container_exists(node.name):
                progress(f"removing host {node.name}")
                podman.stop_host(node.name)
                done.append(f"removed host {node.name}")
        if podman.network_exists(local.network.name):
            podman.remove_network(local.network.name)
            done.append(f"removed network {local.network.name}")
        snapshot = MachineSnapshot.load(local.snapshot_file)
        if snapshot:
            done += snapshot.restore()
            local.snapshot_file.unlink()
    return done
