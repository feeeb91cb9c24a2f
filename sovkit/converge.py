"""The one converge pipeline: `pulumi up` (HostConfiguration runs `python -m sovkit.converge SITE`), `sovkit up`,
`sovkit converge` and `sovkit rehearse` all bring a site's hosts to the stack's state through `converge()`.

1. The inventory, rendered from the stack (sovkit/render/inventory.py) with the addresses the machines have, is
   written to the site's state folder (or taken as Pulumi rendered it, from SOVKIT_INVENTORY).
2. What the plays need that is not in the stack is made or read on this machine: each tenant's key hash (from its
   key file, or the Pulumi secret in SOVKIT_TENANT_KEYS; a key never leaves this machine), the gateway's key to its
   model servers (made once, kept 0600 in the state folder), the serving chart's alert rules (through helm), an
   RKE2 site's cluster token (made once, kept beside it) and its etcd snapshot store's credentials (the Pulumi
   secrets in SOVKIT_ETCD_SNAPSHOT_CREDENTIALS, or the files the stack names). They go to the play in a 0600
   variables file, never into a log or the inventory.
3. The run's own preconditions are checked with the rules the roles use (sovkit/config/checks.py): those secrets,
   and that this machine is inside the admin networks (or loading the firewall would cut its SSH session).
   Nothing is touched when one fails.
4. ansible-playbook playbooks/site.yml, with progress per play and task, the whole log kept; the result counts
   what changed per host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from sovkit.config import SiteConfig, checks
from sovkit.config.checks import GATE_TENANT
from sovkit.phases import Progress
from sovkit.render.gate import gated_models
from sovkit.render.inventory import render_inventory
from sovkit.stacks import project_root
from sovkit.workspace import SiteWorkspace, secret_file

if TYPE_CHECKING:
    from sovkit.gate.rollout import GateRollout

PLAYBOOK = "playbooks/site.yml"
INVENTORY_ENV = "SOVKIT_INVENTORY"  # the inventory Pulumi rendered, with the addresses its cloud gave
TENANT_KEYS_ENV = "SOVKIT_TENANT_KEYS"  # JSON {tenant: key} for tenants whose key is a Pulumi secret
# JSON {accessKeyId, secretAccessKey}: the etcd snapshot store's credentials as the Pulumi program read them
ETCD_CREDENTIALS_ENV = "SOVKIT_ETCD_SNAPSHOT_CREDENTIALS"
UPSTREAM_KEY_LENGTH = 48  # characters: 36 random bytes as URL-safe base64


class ConvergeError(RuntimeError):
    """The converge could not start, or the play failed; the message says why and where the log is."""


@dataclass(frozen=True)
class PlayRun:
    """An ansible-playbook run: its exit status, time and output, and what its recap says changed."""

    returncode: int
    seconds: float
    output: str

    @property
    def changed(self) -> dict[str, int]:
        """changed= per host, from the play's recap."""
        recap = re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", self.output, re.M)
        return {m.group(1): int(m.group(2)) for m in recap}

    def changed_tasks(self) -> list[str]:
        """'TASK name: host' for every task or handler that reported a change (what broke idempotence)."""
        out, task = [], ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed: ["):
                out.append(f"{task}: {line.split('[', 1)[1].split(']', 1)[0]}")
        return out


@dataclass(frozen=True)
class ConvergeResult(PlayRun):
    log: Path = Path()  # the whole output, kept in the site's state folder
    gate: GateRollout | None = None  # the quality gate's verdicts and what they withhold (hosts mode, gated models)
    inventory: dict = field(repr=False, default_factory=dict)  # what the site now runs with (the gate's grants)


class _Unsafe(str):
    """A value Ansible must take as data, never as a template (the alert rules carry Prometheus's own
    `{{ $labels.x }}`): written with Ansible's `!unsafe` tag."""


def _unsafe(value: object) -> object:
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return _Unsafe(value) if isinstance(value, str) else value


class _UnsafeDumper(yaml.SafeDumper):
    pass


_UnsafeDumper.add_representer(_Unsafe, lambda dumper, text: dumper.represent_scalar("!unsafe", str(text)))


def tenant_key_hashes(site: SiteConfig, pulumi_keys: Mapping[str, str]) -> dict[str, str]:
    """{tenant: SHA-256 of its API key}: from Pulumi's secrets, else the tenant's key file on this machine."""
    hashes = {}
    for name, tenant in sorted(site.serving.tenants.items()):
        if name in pulumi_keys:
            key = pulumi_keys[name]
        elif tenant.api_key.file:
            try:
                key = Path(tenant.api_key.file).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ConvergeError(
                    f"{site.source}: tenants.{name}.apiKey.file names {tenant.api_key.file}, which cannot be read "
                    f"on this machine ({err.strerror}); allowed: a readable file holding the key (one line, "
                    f"{checks.MIN_SECRET_LENGTH} or more characters, mode 0600). Nothing was changed.") from None
        else:
            raise ConvergeError(
                f"{site.source}: tenants.{name}.apiKey is the Pulumi secret {tenant.api_key.pulumi_secret}, which "
                f"{TENANT_KEYS_ENV} does not hold; run the converge through `pulumi up`. Nothing was changed.")
        for finding in checks.secret(key):
            raise ConvergeError(f"{site.source}: the API key of tenant {name} has {finding.found}; allowed: "
                                f"{finding.allowed}. Nothing was changed.")
        hashes[name] = hashlib.sha256(key.encode()).hexdigest()
    return hashes


def upstream_key(workspace: SiteWorkspace) -> str:
    """The gateway's key to its model servers: made once per site, kept 0600 in the site's state folder."""
    return secret_file(workspace.secrets / "upstream-api-key", nbytes=UPSTREAM_KEY_LENGTH * 3 // 4)


def gate_key_file(workspace: SiteWorkspace) -> Path:
    return workspace.secrets / "gate-api-key"


def gate_key(workspace: SiteWorkspace) -> str:
    """The quality gate's own key at the gateway (tenant GATE_TENANT): made once per site, kept 0600 beside it."""
    return secret_file(gate_key_file(workspace), nbytes=UPSTREAM_KEY_LENGTH * 3 // 4)


def cluster_token(workspace: SiteWorkspace) -> str:
    """RKE2's cluster token (servers and agents join with it): made once per site, kept 0600 in the site's state
    folder, given to the plays in their 0600 variables file, never in the inventory."""
    return secret_file(workspace.secrets / "rke2-token", nbytes=UPSTREAM_KEY_LENGTH * 3 // 4)


def etcd_snapshot_credentials(site: SiteConfig, given: Mapping[str, str]) -> dict[str, str]:
    """rke2-server's credentials for the etcd snapshot store, by the variable names etcd-s3 reads
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): each from `given` (by its field, accessKeyId or secretAccessKey: what
    the Pulumi program read, or a rehearsal's own), else from the file the stack names on this machine; {} where no
    snapshot goes to S3. Raises ConvergeError, naming the key and never the value, before anything runs."""
    from sovkit.config.rke2 import snapshot_store
    from sovkit.render.rke2 import SERVER_ENVIRONMENT_NAMES

    creds = site.platform.etcd_snapshot_credentials
    if snapshot_store(site) is None or creds is None:
        return {}
    out = {}
    for field_name, ref, name in zip(("accessKeyId", "secretAccessKey"), (creds.access_key_id, creds.secret_access_key),
                                     SERVER_ENVIRONMENT_NAMES, strict=True):
        path = f"etcdSnapshotCredentials.{field_name}"
        if field_name in given:
            value = given[field_name]
        elif ref.file:
            try:
                value = Path(ref.file).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise ConvergeError(
                    f"{site.source}: {path}.file names {ref.file}, which cannot be read on this machine "
                    f"({err.strerror}); allowed: a readable file holding it (mode 0600). "
                    "Nothing was changed.") from None
        else:
            raise ConvergeError(
                f"{site.source}: {path} is the Pulumi secret {ref.pulumi_secret}, which {ETCD_CREDENTIALS_ENV} does "
                "not hold; run the converge through `pulumi up`, or name a file. Nothing was changed.")
        for finding in checks.environment_value(value):
            raise ConvergeError(f"{site.source}: {path} has {finding.found}; allowed: {finding.allowed}. "
                                "Nothing was changed.")
        out[name] = value
    return out


def play_variables(site: SiteConfig, workspace: SiteWorkspace, pulumi_keys: Mapping[str, str],
                   etcd_credentials: Mapping[str, str] | None = None) -> dict:
    """What the plays need beyond the inventory: in hosts mode secrets and the alert rules (the chart's and the
    hosts'), whose templates Ansible must not expand; on an RKE2 site its cluster token and rke2-server's
    environment file (the etcd snapshot store's credentials, or "" where snapshots stay on the servers)."""
    if site.platform.mode != "hosts":
        from sovkit.config.rke2 import runs_rke2
        from sovkit.render.rke2 import server_environment

        if not runs_rke2(site):
            return {}
        return {"rke2_token": cluster_token(workspace), "rke2_server_environment": server_environment(
            etcd_snapshot_credentials(site, etcd_credentials or {}))}
    from sovkit.render import alerting
    from sovkit.render.values import render_values
    from sovkit.serving import chart  # needs the helm binary (scripts/helm.sh)

    key = upstream_key(workspace)
    rules = chart.alert_rules(render_values(site))
    hashes = tenant_key_hashes(site, pulumi_keys)
    if gated_models(site):
        hashes[GATE_TENANT] = hashlib.sha256(gate_key(workspace).encode()).hexdigest()
    return {"gateway_tenant_key_hashes": hashes, "gateway_upstream_api_key": key,
            "vllm_service_api_key": key, "monitoring_alert_rule_groups": rules["groups"],
            "monitoring_host_alert_rule_groups": alerting.host_rule_groups(),
            "monitoring_namespace_label": rules["namespace"]}


def source_address(destination: str) -> str | None:
    """The address this machine sends from to `destination` (the kernel's route choice; no packet is sent)."""
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((destination, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return None


def check_admitted(site: SiteConfig, inventory: dict) -> None:
    """This machine reaches every SSH host from inside the admin networks (the firewall would cut it otherwise)."""
    for group in inventory["all"]["children"].values():
        for name, host in (group.get("hosts") or {}).items():
            if not host or host.get("ansible_connection") not in (None, "ssh", "ansible.builtin.ssh"):
                continue
            source = source_address(str(host["ansible_host"]))
            for finding in checks.admitted(source, list(site.residency.admin_cidrs)):
                raise ConvergeError(
                    f"{site.source}: this machine reaches {name} ({host['ansible_host']}) from {finding.found}; "
                    f"allowed: {finding.allowed}. Nothing was changed.")


def check_rendered(site: SiteConfig, inventory: dict) -> None:
    """What the site's shape leaves to the run: a hosts-mode site needs a pinned runtime for its accelerator."""
    variables = inventory["all"]["vars"]
    if "vllm_service_requirements" in variables:
        for finding in checks.runtime_pins(variables["vllm_service_requirements"]):
            raise ConvergeError(f"{site.source}: serving on {site.accelerator.accelerator} in hosts mode: found "
                                f"{finding.found}; allowed: {finding.allowed}. Nothing was changed.")


def mitogen_strategy() -> dict[str, str]:
    """The environment that runs a play with mitogen's strategy: one Python per host for the whole play, not one
    per task. A rehearsal's converge takes a third less time (br-ministerio-cpu: 195 s, not 285 s; a re-run 56 s,
    not 98 s), a VM under software emulation ten times less. Connections mitogen does not know (the local site's
    podman plugin) run as they would without it; the local site does without it (play_strategy)."""
    import ansible_mitogen

    return {"ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


def play_strategy(site: SiteConfig) -> dict[str, str]:
    """Mitogen's strategy for every site but `local`: there it drives only the tasks run on this machine (the site
    CA's), and its local Python stalls until the model servers on this same machine are idle again (a re-run under
    serving load waited 150 s, then failed with 'Connection timed out'); ansible's own runs them in 12 s."""
    return {} if site.infrastructure.provider == "local" else mitogen_strategy()


def converge(site: SiteConfig, *, inventory: dict | None = None, workspace: SiteWorkspace | None = None,
             pulumi_keys: Mapping[str, str] | None = None, etcd_credentials: Mapping[str, str] | None = None,
             extra_args: Sequence[str] = (),
             in_lab: Callable[[list[str]], list[str]] | None = None, env: Mapping[str, str] | None = None,
             progress: Progress = lambda _: None, check: bool = True,
             log_name: str = "converge.log") -> ConvergeResult:
    """Converge the site's hosts, then (the whole play, hosts mode) gate the models that have a quality gate and
    grant them as the verdicts say. `inventory` defaults to the rendered one; `in_lab` wraps the ansible-playbook
    command line (and the gate's) to run it as a rehearsal's admin machine (whose addresses the rehearsal chose inside
    the admin networks); `env` adds to the play's environment (podman's settings, an ssh configuration);
    `etcd_credentials` holds the etcd snapshot store's credentials by field where they are not files here (Pulumi's
    secrets, a rehearsal's own). Raises ConvergeError before anything runs when a precondition fails, and after, when
    the play fails (`check`)."""
    workspace = workspace or SiteWorkspace.of(site.name)
    inventory = inventory if inventory is not None else render_inventory(site, workspace=workspace)
    check_rendered(site, inventory)
    if in_lab is None:
        check_admitted(site, inventory)
    variables = play_variables(site, workspace, pulumi_keys or {}, etcd_credentials)
    variables_file = workspace.secrets / "play-variables.yml"
    variables_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(variables_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        yaml.dump(_unsafe(variables), stream, Dumper=_UnsafeDumper, sort_keys=True, width=120)
    root = project_root()
    play_env = {**os.environ, **play_strategy(site), **(env or {}), "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}

    def play(inventory: dict, args: Sequence[str], log_name: str) -> ConvergeResult:
        workspace.state_dir.mkdir(parents=True, exist_ok=True)
        workspace.inventory.write_text(yaml.safe_dump(inventory, sort_keys=True, default_flow_style=False,
                                                      width=120))
        argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(workspace.inventory),
                "-e", f"@{variables_file}", str(root / PLAYBOOK), *args]
        result = run_play(in_lab(argv) if in_lab else argv, play_env, workspace.logs / log_name, progress)
        if check and result.returncode != 0:
            tail = "".join(result.output.splitlines(keepends=True)[-40:])
            raise ConvergeError(f"converge of {site.name} failed (ansible-playbook exit {result.returncode}); "
                                f"log: {result.log}\n{tail}")
        return result

    result = play(inventory, extra_args, log_name)
    if result.returncode != 0 or extra_args or site.platform.mode != "hosts" or not gated_models(site):
        return replace(result, inventory=inventory)
    from sovkit.gate.rollout import GRANTS_GROUP, GRANTS_TAG, gate_and_grant

    gate = gate_and_grant(site, inventory, workspace, gate_key(workspace), wrap=in_lab, progress=progress,
                          regrant=lambda granted: play(granted, ["--tags", GRANTS_TAG, "--limit", GRANTS_GROUP],
                                                       "grants.log"))
    return replace(result, gate=gate, inventory=gate.inventory)


def run_play(argv: list[str], env: Mapping[str, str], log_path: Path, progress: Progress) -> ConvergeResult:
    """One ansible-playbook run, its output kept in `log_path` and its plays and tasks shown as progress."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    lines: list[str] = []
    with log_path.open("w") as log, subprocess.Popen(argv, cwd=project_root(), env=env, stdout=subprocess.PIPE,
                                                     stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            if line.startswith(("PLAY [", "TASK [")):
                progress("  " + line.strip(" *\n"))
    return ConvergeResult(proc.returncode, time.monotonic() - started, "".join(lines), log_path)


def main(argv: list[str] | None = None) -> int:
    """`python -m sovkit.converge SITE`: what `pulumi up` runs on the machines it made (HostConfiguration)."""
    from sovkit.config import load_stack
    from sovkit.errors import StackError
    from sovkit.stacks import find_stack

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sovkit.converge SITE", file=sys.stderr)
        return 2
    try:
        site = load_stack(find_stack(args[0]))
    except (StackError, FileNotFoundError) as err:
        print(str(err), file=sys.stderr)
        return 1
    given = os.environ.get(INVENTORY_ENV)
    inventory = yaml.safe_load(given) if given else None
    keys = json.loads(os.environ.get(TENANT_KEYS_ENV) or "{}")
    etcd = json.loads(os.environ.get(ETCD_CREDENTIALS_ENV) or "{}")
    try:
        result = converge(site, inventory=inventory, pulumi_keys=keys, etcd_credentials=etcd,
                          progress=lambda line: print(line, flush=True))
    except ConvergeError as err:
        print(str(err), file=sys.stderr)
        return 1
    print(f"converged {site.name} in {result.seconds:.0f} s; changed per host: {result.changed}; log: {result.log}")
    for line in result.gate.lines() if result.gate else []:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
