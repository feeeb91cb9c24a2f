"""HostConfiguration: converges the site's machines through pulumi-command, with the one converge pipeline
`sovkit up` and `sovkit rehearse` also run (`python -m sovkit.converge SITE`, which runs playbooks/site.yml).

The play runs again exactly when its inputs change: `triggers` is a sha256 over the rendered inventory, the stack
config, every file under roles/ and playbooks/, (hosts mode) the tenant API keys it installs and (an RKE2 site) the
etcd snapshot store's credentials it writes. A `pulumi up` with no change to those leaves the hosts alone.
(pulumi-command also re-runs a Command whose other inputs change; the only others that can are `dir`, the checkout's
absolute path, and the Python named in `create`, the checkout's .venv: running from a checkout in another folder
re-runs the play, which is idempotent.) In kubernetes mode a second command reads the kubeconfig RKE2 wrote on the
first control-plane node; its output is a Pulumi secret and is never logged.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command
import yaml
from pydantic import BaseModel, ConfigDict, Field

from sovkit.converge import ETCD_CREDENTIALS_ENV, INVENTORY_ENV, TENANT_KEYS_ENV
from sovkit.workspace import SiteWorkspace

TYPE = "sovkit:hosts:HostConfiguration"
CONVERGE_MODULE = "sovkit.converge"
HASHED_DIRS = ("roles", "playbooks")
# Not read by the play: caches, and each role's molecule scenario (its own tests, run by CI, never on a site).
SKIPPED_PARTS = ("__pycache__", ".pytest_cache", ".cache", "molecule")


def workdir(site_name: str) -> str:
    """Per-site working folder, relative to the project root the commands run in (git-ignored)."""
    return SiteWorkspace.of(site_name).relative


def inventory_path(site_name: str) -> str:
    workspace = SiteWorkspace.of(site_name)
    return workspace.inventory.relative_to(workspace.root).as_posix()


def with_addresses(inventory: dict, addresses: Mapping[str, str],
                   host_vars: Mapping[str, Mapping[str, object]] | None = None) -> str:
    """The rendered inventory with each host's `ansible_host` and `sovkit_address` (the address its services bind
    and its certificate names) set to the address its provider gave it, and the variables its provider reported
    (`host_vars`, by host: OpenStack's data volume evidence) added to the host."""
    doc = json.loads(json.dumps(inventory))  # a deep copy the caller's dict never sees
    extra = json.loads(json.dumps(host_vars or {}))
    for group in doc["all"].get("children", {}).values():
        for host, variables in group.get("hosts", {}).items():
            own = bool(variables)  # the host's entry in its role group, not a membership-only one ({})
            if addresses.get(host):
                variables["ansible_host"] = variables["sovkit_address"] = addresses[host]
            if own and host in extra:
                variables.update(extra[host])
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=120)


def source_files(root: Path) -> list[Path]:
    """Every file under roles/ and playbooks/ the play reads, in a stable order."""
    files = []
    for folder in HASHED_DIRS:
        base = root / folder
        if base.is_dir():
            files += [p for p in base.rglob("*") if p.is_file() and not any(s in p.parts for s in SKIPPED_PARTS)
                      and p.suffix != ".pyc"]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def config_hash(inventory: str, stack_config: Mapping[str, object], root: Path,
                tenant_keys: Mapping[str, str] | None = None,
                etcd_credentials: Mapping[str, str] | None = None) -> str:
    """sha256 over the inventory, the stack config, the roles and playbooks, (hosts mode) the tenant API keys the
    play installs and (an RKE2 site) the etcd snapshot store's credentials it writes: the play's whole input. Secrets
    enter as their own sha256 only, and a trigger made from them is a Pulumi secret all the same."""
    digest = hashlib.sha256()
    digest.update(b"inventory\0" + inventory.encode() + b"\0")
    digest.update(b"config\0" + json.dumps(stack_config, sort_keys=True, default=str).encode() + b"\0")
    for label, secrets in ((b"tenant-keys", tenant_keys), (b"etcd-snapshot-credentials", etcd_credentials)):
        if secrets:
            hashed = {t: hashlib.sha256(k.encode()).hexdigest() for t, k in sorted(secrets.items())}
            digest.update(label + b"\0" + json.dumps(hashed, sort_keys=True).encode() + b"\0")
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def playbook_command(site_name: str, python: str | None = None) -> str:
    """The converge pipeline `sovkit up` and `sovkit rehearse` run: `python -m sovkit.converge SITE` reads the
    inventory the program rendered from SOVKIT_INVENTORY (and writes it where the kubeconfig fetch and the
    operator's `sovkit verify` read it), the tenant keys held as Pulumi secrets from SOVKIT_TENANT_KEYS, and runs
    playbooks/site.yml, with the Python that runs this program (the checkout's .venv)."""
    return f"umask 077 && {shlex.quote(python or sys.executable)} -m {CONVERGE_MODULE} {shlex.quote(site_name)}"


def kubeconfig_command(site_name: str, python: str | None = None) -> str:
    python = python or sys.executable
    return f"{shlex.quote(python)} -m sovkit.infra.kubeconfig {shlex.quote(inventory_path(site_name))}"


class HostConfigurationArgs(BaseModel):
    """Inputs of the site play."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    site_name: str = Field(description="Site name: names the working folder and the commands")
    inventory: Any = Field(description="Rendered Ansible inventory (YAML, a pulumi.Input[str]), addresses filled in")
    stack_config: dict[str, object] = Field(description="Non-secret stack config, part of the trigger")
    root: Path = Field(description="Project root: the play runs there, roles/ and playbooks/ are hashed there")
    tenant_keys: dict[str, Any] = Field(
        default_factory=dict, description="API keys (pulumi.Input[str]) held as Pulumi secrets, by tenant")
    etcd_snapshot_credentials: dict[str, Any] = Field(
        default_factory=dict, description="An RKE2 site's etcd snapshot store credentials (pulumi.Input[str], "
                                          "secrets), by field: accessKeyId, secretAccessKey")
    fetch_kubeconfig: bool = Field(False, description="kubernetes mode: read RKE2's kubeconfig after the play")


class HostConfiguration(pulumi.ComponentResource):
    """The site play, re-run exactly when its inputs change; `kubeconfig` (secret) in kubernetes mode."""

    def __init__(self, name: str, args: HostConfigurationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        inventory = pulumi.Output.from_input(args.inventory)
        if args.tenant_keys or args.etcd_snapshot_credentials:  # secret inputs: the trigger made from them is too
            self.trigger = pulumi.Output.all(inventory, pulumi.Output.all(**args.tenant_keys),
                                             pulumi.Output.all(**args.etcd_snapshot_credentials)).apply(
                lambda three: config_hash(three[0], args.stack_config, args.root, three[1], three[2]))
        else:
            self.trigger = inventory.apply(lambda text: config_hash(text, args.stack_config, args.root))
        environment: dict[str, pulumi.Input[str]] = {INVENTORY_ENV: inventory, "ANSIBLE_NOCOLOR": "1"}
        for variable, secrets in ((TENANT_KEYS_ENV, args.tenant_keys),
                                  (ETCD_CREDENTIALS_ENV, args.etcd_snapshot_credentials)):
            if secrets:
                environment[variable] = pulumi.Output.secret(
                    pulumi.Output.all(**secrets).apply(lambda values: json.dumps(values, sort_keys=True)))
        self.playbook = command.local.Command(
            f"{name}-site-play", create=playbook_command(args.site_name), dir=str(args.root),
            environment=environment, triggers=[self.trigger],
            opts=pulumi.ResourceOptions(parent=self))
        self.kubeconfig: pulumi.Output[str] | None = None
        outputs: dict[str, object] = {"trigger": self.trigger, "inventory_path": inventory_path(args.site_name)}
        if args.fetch_kubeconfig:
            fetch = command.local.Command(
                f"{name}-kubeconfig", create=kubeconfig_command(args.site_name), dir=str(args.root),
                triggers=[self.trigger], logging=command.local.Logging.NONE,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.playbook],
                                            additional_secret_outputs=["stdout"]))
            self.kubeconfig = pulumi.Output.secret(fetch.stdout)
            outputs["kubeconfig"] = self.kubeconfig
        self.register_outputs(outputs)
