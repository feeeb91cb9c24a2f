"""`sovkit rehearse STACK`: a dress rehearsal of any site on this machine, through the path `pulumi up` takes.

Phases: the images; the offline bundle; the site's lab (its networks in namespaces of their own, this machine as
its admin machine); the in-country stand-ins (resolvers, NTP, the mirror serving the bundle's packages in Debian's
layout, the model store, alert sinks); the site's hosts (names, addresses, login user, SSH port); the converge
`pulumi up` runs (sovkit/converge.py) over SSH; `sovkit verify` over SSH; then, by mode, a call through the
gateway for every served model (hosts) or live probes of the node firewall (kubernetes). A re-run changes
nothing. `down` removes every container and namespace and restores what the hosts changed on this machine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shlex
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sovkit.config import SiteConfig
from sovkit.config.schema import AcceleratorSection, ServingSection
from sovkit.converge import ConvergeResult, converge
from sovkit.hosts import MachineSnapshot, Podman, default_cache_dir, ensure_image
from sovkit.hosts._run import run
from sovkit.hosts.lab import LabLock
from sovkit.hosts.netlab import NetLab
from sovkit.hosts.vm import VmImage, build_vm_image
from sovkit.phases import Phases, Progress
from sovkit.rehearse import hosts as site_hosts
from sovkit.rehearse import pki, vms
from sovkit.rehearse.mirror import ArchiveKey, build_debian_mirror, build_vendor_repository, make_archive_key
from sovkit.rehearse.plan import MAIL_RELAY, Machine, RehearsalPlan, plan
from sovkit.rehearse.services import HttpSite, SmtpSink, StandIns, ensure_services_image, start_stand_ins
from sovkit.render import role_vars, sandbox
from sovkit.render.inventory import render_inventory
from sovkit.verify.verdict import SiteVerdict
from sovkit.workspace import HOST_BUNDLE_DIR, SiteWorkspace, secret_file

MIRROR_KEY_DEST = "/etc/apt/keyrings/sovkit-rehearsal-mirror.asc"
CA_DEST = "/usr/local/share/ca-certificates/sovkit-rehearsal.crt"
# The serving roles' variables a CPU stand-in replaces; everything else (tenants, grants, limits, TLS, firewall,
# monitoring) stays the site's own.
GPU_EXPORTER_UNIT = sandbox.services()["gpu_exporter"]
SERVING_SUBSTITUTED = ("accelerator_vendor", "accelerator_driver_version", "model_store_models",
                       "vllm_service_models", "vllm_service_requirements", "gateway_models", "gateway_model_names")


@dataclass
class RehearsalResult:
    site: str
    substitutions: list[str]
    not_stood_up: list[str]
    seconds: dict[str, float]
    converge: ConvergeResult
    converge_again: ConvergeResult  # the same converge once more: idempotent when it changed nothing
    checks_passed: bool  # every host ran the suite and no check failed (sovkit.verify.report.Report.ok)
    verdict: SiteVerdict  # the site's verdict, as the report's first line gives it
    report: Path
    checks: list[str] = field(default_factory=list)  # what the serving call or the firewall probes found
    failures: list[str] = field(default_factory=list)
    record: Path | None = None

    @property
    def ok(self) -> bool:
        return self.checks_passed and not self.failures


@dataclass(frozen=True)
class Rehearsal:
    """A site's rehearsal: its plan, lab, folders and containers, all derived from the stack."""

    site: SiteConfig
    plan: RehearsalPlan
    workspace: SiteWorkspace
    podman: Podman

    @classmethod
    def of(cls, site: SiteConfig, vms: Iterable[str] = ()) -> Rehearsal:
        """The rehearsal of `site`, with the hosts or roles named in `vms` on virtual machines."""
        return cls(site, plan(site, vms), SiteWorkspace.of(site.name), Podman(default_cache_dir() / "podman"))

    @property
    def folder(self) -> Path:
        return self.workspace.rehearsal

    @property
    def lab(self) -> NetLab:
        return NetLab(self.site.name, list(self.plan.cidrs))

    @property
    def access(self) -> site_hosts.SshAccess:
        return site_hosts.SshAccess(self.folder / "ssh")

    @property
    def record_file(self) -> Path:
        return self.folder / "record.json"

    @property
    def vm_folder(self) -> Path:
        return self.folder / "vms"

    def host(self, name: str) -> Machine:
        return next(h for h in self.plan.hosts if h.name == name)

    def root_argv(self, machine: Machine, argv: Sequence[str]) -> list[str]:
        """The command line running `argv` as root on `machine`: podman exec, or SSH and sudo on a VM."""
        if machine.vm:
            return vms.root_argv(self.lab, self.access, machine.ssh_user, machine.address, machine.ssh_port,
                                 list(argv))
        return ["podman", "exec", site_hosts.container_name(self.site.name, machine.name), *argv]

    def on(self, machine: Machine, *argv: str, check: bool = True) -> str:
        """What `argv` prints, run as root on `machine` (a failure raises HostsError unless `check` is off)."""
        return run(self.root_argv(machine, argv), env=self.podman.env(), check=check, timeout=300).stdout

    @cached_property
    def archive_key(self) -> ArchiveKey:
        """The key the stand-in mirror signs with and the hosts trust (made once, kept in the rehearsal folder)."""
        return make_archive_key(self.folder / "archive-key", self.site.name)


# -- what stands in --------------------------------------------------------------------------------------------------
def serving_stand_in(site: SiteConfig) -> SiteConfig:
    """The site as its model servers run here: the CPU engine, and the tiny model made offline under every served
    name, from the same sources (so the model store is read where the site reads it), serving text generation (its
    one task) under its own licence (so no waiver)."""
    from sovkit.config.catalogue import TINY_MODEL, get
    from sovkit.serving import tinymodel

    revision = tinymodel.revision(tinymodel.manifest(tinymodel.files()))
    tiny = get(TINY_MODEL)
    models = {name: spec.model_copy(update={
        "catalogue": TINY_MODEL, "revision": revision, "quantization": "none", "languages": list(tiny.languages[:1]),
        "max_context": min(spec.max_context, tiny.max_context), "tensor_parallel": "auto", "replicas": 1,
        "node_role": site.model_role(spec), "task": None, "licence_waiver": None})
        for name, spec in site.serving.models.items()}
    return dataclasses.replace(site, accelerator=AcceleratorSection(accelerator="cpu"),
                               serving=ServingSection(models=models, tenants=site.serving.tenants))


def tenant_keys(rehearsal: Rehearsal) -> dict[str, str]:
    """A key per tenant, made for the rehearsal (the site's own key files and Pulumi secrets are not here)."""
    folder = rehearsal.folder / "keys"
    return {tenant: secret_file(folder / f"{tenant}.key") for tenant in sorted(rehearsal.site.serving.tenants)}


def etcd_snapshot_credentials(rehearsal: Rehearsal) -> dict[str, str]:
    """The etcd snapshot store's credentials of an RKE2 site, made for the rehearsal (the site's Pulumi secrets and
    files are not here), by field as the converge takes them: the servers get /etc/default/rke2-server as on the site.
    No RKE2 starts here, so nothing uploads a snapshot with them (plan.substitutions). Made once, kept in the
    rehearsal folder: the converge run again writes the same file."""
    if rehearsal.site.platform.etcd_snapshot_credentials is None:
        return {}
    folder = rehearsal.folder / "keys"
    return {"accessKeyId": secret_file(folder / "etcd-snapshot-access-key-id", nbytes=15),
            "secretAccessKey": secret_file(folder / "etcd-snapshot-secret-access-key", nbytes=30)}


def prepare_bundle(rehearsal: Rehearsal, progress: Progress) -> Path:
    """What the hosts install: for hosts mode the whole offline bundle of the CPU stand-in; for kubernetes mode the
    hardening's packages (no model server runs on its hosts)."""
    from sovkit.bundle.build import build_apt, build_bundle

    root = rehearsal.workspace.bundle
    if rehearsal.site.platform.mode == "hosts":
        build_bundle(serving_stand_in(rehearsal.site), root, progress)
    else:
        root.mkdir(parents=True, exist_ok=True)
        build_apt(root, progress)
    return root


def stand_ins(rehearsal: Rehearsal, bundle: Path) -> StandIns:
    """The stand-in services of the plan: the mirror in Debian's layout, the model store, the alert sinks."""
    p, folder = rehearsal.plan, rehearsal.folder
    https = [s for s in p.services if s.stood_up and s.scheme in ("https", "smtps")]
    cert = key = None
    if https:
        pki.ensure_ca(folder / "pki", rehearsal.site.name)
        cert, key = pki.server_certificate(folder / "pki", sorted({s.host for s in https if s.host != s.address}),
                                           sorted({s.address for s in https if s.host == s.address}))
    sites = []
    for service in (s for s in p.services if s.stood_up and s.scheme in ("http", "https")):
        tls = service.scheme == "https"
        common = {"server_name": service.host, "address": service.address, "port": service.port, "tls": tls,
                  "cert": cert if tls else None, "key": key if tls else None}
        if service.purpose == "mirror":
            layout = build_debian_mirror(bundle / "apt", folder / "mirror", rehearsal.archive_key)
            base = service.path.rstrip("/")
            sites.append(HttpSite(**common, roots={base: layout.debian, base + "-security": layout.security}))
        elif service.purpose == "model store":
            roots = {"/" + spec.source.split("://", 1)[1].split("/", 1)[1]: bundle / "models" / name
                     for name, spec in rehearsal.site.serving.models.items()}
            sites.append(HttpSite(**common, roots=roots))
        elif service.purpose.startswith("vendor repository"):
            name = service.purpose.removeprefix("vendor repository ")
            source = rehearsal.site.residency.apt_repositories[name]
            repository = build_vendor_repository(folder / "vendor-repositories" / name, rehearsal.archive_key, name,
                                                 source.suites, source.components)
            sites.append(HttpSite(**common, roots={service.path.rstrip("/") or "/": repository}))
        elif service.purpose.startswith("alert receiver"):
            sites.append(HttpSite(**common, sink=True))
    smtp = tuple(SmtpSink(s.address, s.port, s.scheme == "smtps", cert if s.scheme == "smtps" else None,
                          key if s.scheme == "smtps" else None)
                 for s in p.services if s.stood_up and s.purpose == MAIL_RELAY)
    return StandIns(name=site_hosts.container_name(rehearsal.site.name, "services"), lab=rehearsal.lab,
                    addresses=p.service_addresses, workdir=folder / "stand-ins", dns_listen=p.resolvers,
                    dns_records=dict(p.records), dns_mx=dict(p.mail_exchangers), ntp_listen=p.ntp_servers,
                    http_sites=_one_per_server(sites), smtp_sinks=smtp)


def _one_per_server(sites: list[HttpSite]) -> tuple[HttpSite, ...]:
    """One virtual host per name, address and port: services the site keeps on one server (the Debian mirror and a
    vendor's repository under one host name, say) are served side by side, each under its own path."""
    merged: dict[tuple, HttpSite] = {}
    for site in sites:
        server = (site.server_name, site.address, site.port, site.sink)
        before = merged.get(server)
        merged[server] = dataclasses.replace(before, roots={**before.roots, **site.roots}) if before else site
    return tuple(merged.values())


def inventory(rehearsal: Rehearsal) -> dict:
    """The site's own inventory (addresses as the plan gives them), with the substitutions applied."""
    site, folder = rehearsal.site, rehearsal.folder
    rendered = render_inventory(site, addresses=rehearsal.plan.addresses, workspace=rehearsal.workspace)
    variables = rendered["all"]["vars"]
    if site.platform.mode == "hosts":
        stand_in = role_vars.serve_vars(serving_stand_in(site), rehearsal.workspace)
        variables.update({k: stand_in[k] for k in SERVING_SUBSTITUTED})
        for group in rendered["all"]["children"].values():
            for host in group["hosts"].values():
                if host and "accelerator_expected_count" in host:
                    host["accelerator_expected_count"] = 0
                if host and host.get("monitoring_gpu_exporter_enabled"):  # NVML needs the driver: no GPU here
                    host["monitoring_gpu_exporter_enabled"] = False
                    host["sandbox_units"] = [u for u in host["sandbox_units"] if u != GPU_EXPORTER_UNIT]
                if host and host.get("monitoring_gpu_targets"):
                    host["monitoring_gpu_targets"] = []
    if "rke2_install_enabled" in variables:
        # No Kubernetes runs here (plan.substitutions): the rke2 role checks its inputs, sets the CIS prerequisites
        # and writes every configuration file as on the site, then stops before the release's artifacts (the
        # stand-in mirror does not carry them) and before RKE2 itself.
        variables["rke2_install_enabled"] = False
        variables["rke2_artifacts_enabled"] = False
        # and no GPU: the GPU nodes' driver is not installed (plan.substitutions)
        rendered["all"]["children"].pop("rke2_gpu_nodes", None)
    # The stand-in mirror and vendor repositories are signed by the rehearsal's archive key: their sources trust it
    # in place of the site's keys (which sign the site's real mirrors and are not on this machine).
    stood_up = [s.url.rstrip("/") for s in rehearsal.plan.services
                if s.stood_up and (s.purpose == "mirror" or s.purpose.startswith("vendor repository"))]
    replaced = set()
    for source in variables["os_baseline_apt_sources"]:
        if any(source["uris"].startswith(url) for url in stood_up) and not source.get("trusted"):
            replaced.add(source.get("signed_by"))
            source["signed_by"] = MIRROR_KEY_DEST
    if replaced:
        variables["os_baseline_apt_keys"] = [
            *(k for k in variables["os_baseline_apt_keys"] if k["dest"] not in replaced),
            {"src": str(rehearsal.archive_key.public_armored), "dest": MIRROR_KEY_DEST}]
    # A container has no block device of its own: the role would rightly refuse it as unencrypted (it fails
    # closed on a real host); the rehearsal says so (plan.substitutions) instead of letting the role skip.
    variables["data_at_rest_required"] = False
    for group in rendered["all"]["children"].values():
        for name, host in (group.get("hosts") or {}).items():
            if rehearsal.host(name).vm:  # a VM has its LUKS volume: the site's own requirement holds
                host["data_at_rest_required"] = site.residency.encryption_at_rest_required
    if (folder / "pki" / "ca.crt").exists():
        variables["os_baseline_ca_certificates"] = [{"src": str(folder / "pki" / "ca.crt"), "dest": CA_DEST}]
    return rendered


# -- the phases ------------------------------------------------------------------------------------------------------
def rehearse(site: SiteConfig, progress: Progress = lambda _: None, vm_names: Iterable[str] = ()) -> RehearsalResult:
    """Rehearse `site`, with the hosts or roles named in `vm_names` on virtual machines."""
    from sovkit.rehearse import checks
    from sovkit.verify.runner import run_verify

    rehearsal = Rehearsal.of(site, vm_names)
    for line in rehearsal.plan.substitutions:
        progress(f"substitution: {line.line()}")
    phases = Phases()
    podman = rehearsal.podman
    with phases.timed("images", progress):
        host_image = ensure_image(podman).tag
        services_image = ensure_services_image(podman)
        vm_image = build_vm_image() if any(h.vm for h in rehearsal.plan.hosts) else None
    with phases.timed("bundle", progress):
        bundle = prepare_bundle(rehearsal, progress)
    lab = rehearsal.lab
    with LabLock(), phases.timed("stand-ins", progress):
        MachineSnapshot.save_once(rehearsal.workspace.machine_snapshot)
        lab.create(list(rehearsal.plan.controller), resolvers=list(rehearsal.plan.resolvers))
        spec = stand_ins(rehearsal, bundle)
        if start_stand_ins(podman, spec, services_image):
            progress(f"stand-ins up at {', '.join(spec.addresses)}: {', '.join(spec.units())}")
    access = rehearsal.access.ensure()
    rendered = inventory(rehearsal)  # once the stand-ins made the CA it names; converge, verify and checks share it
    host_bundle = bundle if site.platform.mode == "hosts" else None
    with LabLock(), phases.timed("hosts", progress):
        start_vms(rehearsal, rendered["all"]["vars"]["data_at_rest_paths"], host_bundle, vm_image, progress)
        site_hosts.start_hosts(podman, lab, rehearsal.plan, host_image, access, host_bundle, progress)
        place_path_store_weights(rehearsal)
    keys, etcd = tenant_keys(rehearsal), etcd_snapshot_credentials(rehearsal)
    env = {**podman.env(), "ANSIBLE_SSH_COMMON_ARGS": f"-F {access.config}"}
    with phases.timed("converge", progress):
        result = converge(site, inventory=rendered, workspace=rehearsal.workspace, pulumi_keys=keys,
                          etcd_credentials=etcd, in_lab=lab.argv, env=env, progress=progress)
    rendered = result.inventory  # with the grants the quality gate left (hosts mode, gated models)
    with phases.timed("converge again", progress):  # idempotence, as Molecule proves it: nothing left to change
        again = converge(site, inventory=rendered, workspace=rehearsal.workspace, pulumi_keys=keys,
                         etcd_credentials=etcd, in_lab=lab.argv, env=env, progress=progress,
                         log_name="converge-again.log")
    with phases.timed("verify", progress):
        # every host at once: each suite mostly waits on its SSH connection
        report = run_verify(rendered, rehearsal.workspace.compliance, jobs=len(rehearsal.plan.hosts),
                            env={"SOVKIT_SSH_CONFIG": str(access.config), "CONTAINERS_CONF": str(podman.conf)},
                            wrap=lab.argv)
    with phases.timed("serving" if site.platform.mode == "hosts" else "firewall probes", progress):
        if site.platform.mode == "hosts":
            found, failures = checks.serving(rehearsal, rendered, keys)
            for more_found, more_failures in (checks.usage(rehearsal, rendered),
                                              checks.alert_delivery(rehearsal, rendered, spec)):
                found, failures = found + more_found, failures + more_failures
        else:
            found, failures = checks.node_firewall(rehearsal, rendered)
    failures = [f"converge again: {task} changed (log: {again.log})" for task in again.changed_tasks()] + failures
    outcome = RehearsalResult(
        site=site.name, substitutions=[s.line() for s in rehearsal.plan.substitutions],
        not_stood_up=[f"{s.purpose} {s.url}: {s.why_not}" for s in rehearsal.plan.services if not s.stood_up],
        seconds=phases.seconds, converge=result, converge_again=again, checks_passed=report.ok,
        verdict=report.verdict(), report=rehearsal.workspace.compliance /
        "report.html", checks=found, failures=failures)
    outcome.record = write_record(rehearsal, outcome, report.totals())
    return outcome


def start_vms(rehearsal: Rehearsal, data_folders: dict[str, str], bundle: Path | None, image: VmImage | None,
              progress: Progress) -> list[str]:
    """Every VM host of the plan, booted and prepared as the site's operator would (sovkit.rehearse.vms), side by
    side; a VM already running is left alone. Returns those started now."""
    for machine in rehearsal.plan.hosts:  # a host that changed kind since the last run goes first
        container = site_hosts.container_name(rehearsal.site.name, machine.name)
        if machine.vm and rehearsal.podman.container_exists(container):
            progress(f"removing host {container}: it is a VM in this rehearsal")
            rehearsal.podman.stop_host(container)
            rehearsal.lab.detach(machine.name)
        elif not machine.vm and (vm := vms.VirtualMachine.found(rehearsal.lab, machine.name,
                                                                 rehearsal.vm_folder / machine.name)):
            progress(f"stopping VM {machine.name}: it is a podman host in this rehearsal")
            vm.stop()
    machines = [h for h in rehearsal.plan.hosts if h.vm]
    serving = {n.name for n in rehearsal.site.serving_nodes()} if rehearsal.site.platform.mode == "hosts" else set()

    def one(machine: Machine) -> str | None:
        workdir = rehearsal.vm_folder / machine.name
        if vms.VirtualMachine.found(rehearsal.lab, machine.name, workdir):
            return None
        progress(f"booting VM {machine.name} ({machine.role}, {machine.address}); under emulation, minutes")
        vm = vms.boot(rehearsal.lab, machine.name, list(machine.addresses), rehearsal.access, workdir,
                      shares={HOST_BUNDLE_DIR: bundle} if bundle else None, image=image,
                      memory_mib=vms.SERVING_MEMORY_MIB if machine.name in serving else vms.MEMORY_MIB)
        try:
            vms.prepare_as_operator(rehearsal.lab, rehearsal.access, machine.address, machine.ssh_user,
                                    machine.ssh_port, data_folders, rehearsal.plan.resolvers)
        except BaseException:
            vm.stop()
            raise
        rehearsal.access.forget(machine.address, machine.ssh_port)
        progress(f"started VM {machine.name}: separate file systems, data folders on LUKS, "
                 f"{machine.ssh_user}@:{machine.ssh_port}")
        return machine.name

    if not machines:
        return []
    with ThreadPoolExecutor(max_workers=len(machines)) as pool:
        return [n for n in pool.map(one, machines) if n]


def place_path_store_weights(rehearsal: Rehearsal) -> None:
    """A path model store: the weights lie on the hosts before sovkit runs (the operator put them there). The
    rehearsal puts the stand-in weights there, from the bundle the host sees."""
    site = rehearsal.site
    if site.platform.mode != "hosts" or "://" in site.residency.model_store:
        return
    folders = {spec.source: f"{HOST_BUNDLE_DIR}/models/{name}" for name, spec in site.serving.models.items()}
    script = "set -e; " + "; ".join(f"mkdir -p {shlex.quote(target)} && cp -a {shlex.quote(source)}/. "
                                    f"{shlex.quote(target)}/" for target, source in sorted(folders.items()))
    serving = {n.name for n in site.serving_nodes()}
    for machine in rehearsal.plan.hosts:
        if machine.name in serving and folders:
            rehearsal.on(machine, "sh", "-c", script)


def write_record(rehearsal: Rehearsal, outcome: RehearsalResult, totals: dict) -> Path:
    record = {"site": outcome.site, "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "hosts": [{"name": h.name, "role": h.role, "addresses": list(h.addresses), "login": h.ssh_user,
                         "ssh_port": h.ssh_port} for h in rehearsal.plan.hosts],
              "controller": list(rehearsal.plan.controller), "substitutions": outcome.substitutions,
              "not_stood_up": outcome.not_stood_up, "seconds": outcome.seconds,
              "changed": outcome.converge.changed, "changed_again": outcome.converge_again.changed,
              "compliance": totals,
              "checks_passed": outcome.checks_passed, "verdict": outcome.verdict.verdict,
              "verdict_headline": outcome.verdict.headline,
              "checks": outcome.checks, "failures": outcome.failures}
    rehearsal.record_file.parent.mkdir(parents=True, exist_ok=True)
    rehearsal.record_file.write_text(json.dumps(record, indent=1) + "\n")
    return rehearsal.record_file


def down(site: SiteConfig, progress: Progress = lambda _: None) -> list[str]:
    """Remove the rehearsal's containers and namespaces, restore this machine's settings; returns what was done.
    The record of the last rehearsal stays (.sovkit/<site>/rehearsal/record.json)."""
    rehearsal = Rehearsal.of(site)
    podman = rehearsal.podman
    done = []
    with LabLock():
        done += vms.stop_all(rehearsal.lab, rehearsal.vm_folder)
        names = podman("container", "ls", "--all", "--filter", f"label={site_hosts.SITE_LABEL}={site.name}",
                       "--format", "{{.Names}}").split()
        for name in sorted(names):
            progress(f"removing host {name}")
            podman.stop_host(name)
            done.append(f"removed host {name}")
        services = site_hosts.container_name(site.name, "services")
        if podman.container_exists(services):
            podman.stop_host(services)
            done.append(f"removed stand-ins {services}")
        done += rehearsal.lab.destroy()
        snapshot = MachineSnapshot.load(rehearsal.workspace.machine_snapshot)
        if snapshot:
            done += snapshot.restore()
            rehearsal.workspace.machine_snapshot.unlink()
    for part in ("ssh", "keys", "stand-ins", "mirror", "archive-key", "pki"):  # gpg's agent is never left running
        if (rehearsal.folder / part).exists():
            shutil.rmtree(rehearsal.folder / part)
    return done
