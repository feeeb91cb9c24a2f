"""Every role types its variables in meta/argument_specs.yml, and what sovkit renders for each shipped site passes
the check Ansible runs when the role starts (validate_argument_spec), so a wrong type never first shows in a converge.

The variables a role is validated with are the ones Ansible would give it on each host the site's playbooks run it
on: the role's defaults, under the inventory's `all.vars`, under the host's own variables, templated as the
validate_argument_spec action templates them, then checked with the same ArgumentSpecValidator.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.template import Templar, trust_as_template

from sovkit.config import load_stack
from sovkit.render.inventory import render_inventory
from sovkit.stacks import stack_files

ROOT = Path(__file__).resolve().parents[3]
ROLES_DIR = ROOT / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks" / "main.yml").is_file())
STACKS = {p.name: load_stack(p) for p in stack_files(ROOT)}
INVENTORIES = {name: render_inventory(site) for name, site in STACKS.items()}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@cache
def defaults_of(role: str) -> dict:
    return {k: v for k, v in _load(ROLES_DIR / role / "defaults" / "main.yml").items() if not k.startswith("_")}


@cache
def options_of(role: str) -> dict:
    return _load(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def _role_of(variable: str) -> str | None:
    return next((r for r in ROLES if variable.startswith(f"{r}_")), None)


def _rendered_variables() -> dict[str, set[str]]:
    """Role -> the variables with its prefix that any shipped site's inventory holds (site-wide or per host)."""
    out: dict[str, set[str]] = {r: set() for r in ROLES}
    for inventory in INVENTORIES.values():
        names = set(inventory["all"]["vars"])
        for group in inventory["all"]["children"].values():
            names |= {n for host in group["hosts"].values() for n in host or {}}
        for name in names:
            if role := _role_of(name):
                out[role].add(name)
    return out


RENDERED = _rendered_variables()


def _plays() -> list[dict]:
    """The plays of playbooks/site.yml, its imported playbooks expanded: what a converge runs."""
    plays = []
    for entry in _load(ROOT / "playbooks" / "site.yml"):
        if "ansible.builtin.import_playbook" in entry:
            plays += _load(ROOT / "playbooks" / entry["ansible.builtin.import_playbook"])
        else:
            plays.append(entry)
    return plays


def _role_hosts() -> dict[str, list[str]]:
    """Role -> the host patterns of the plays that run it (by `roles:`, which validates its main entry point)."""
    out: dict[str, list[str]] = {}
    for play in _plays():
        for entry in play.get("roles", []):
            out.setdefault(entry["role"] if isinstance(entry, dict) else entry, []).append(play["hosts"])
    return out


ROLE_HOSTS = _role_hosts()


def hosts_of(inventory: dict, pattern: str) -> dict[str, dict]:
    """The hosts a play's pattern (a group name, or all) reaches, each with its variables over all.vars."""
    # a group, or a slice of one (rke2_servers[0], rke2_servers[1:]): every host of the group stands in for a slice
    assert re.fullmatch(r"\w+(\[\d*:?\d*\])?", pattern), f"host pattern {pattern!r}: this test resolves groups only"
    pattern = pattern.split("[", 1)[0]
    children = inventory["all"]["children"]
    members = {h for g in children.values() for h in g["hosts"]} if pattern == "all" else set(
        children.get(pattern, {}).get("hosts", {}))
    out: dict[str, dict] = {}
    for host in sorted(members):
        variables = dict(inventory["all"]["vars"])
        for group in children.values():  # group vars, then the host's own (set in its role group)
            if host in group["hosts"]:
                variables.update(group.get("vars") or {})
        for group in children.values():
            variables.update(group["hosts"].get(host) or {})
        out[host] = variables
    return out


def _trusted(value: object) -> object:
    """Ansible trusts what it reads from role defaults and inventory files as templates: so does this test."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def validation_errors(role: str, variables: dict) -> list[str]:
    """What validate_argument_spec reports for the role's main entry point, given these play variables."""
    options = options_of(role)
    merged = _trusted({**defaults_of(role), **variables})
    args = Templar(variables=merged).template({k: merged[k] for k in options if k in merged})
    return list(ArgumentSpecValidator(options).validate(args).error_messages)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_declares_exactly_its_variables(role: str):
    """Each role's argument spec declares every variable of its defaults, and none that the role neither
    defaults nor receives from the inventory (a renamed or removed variable leaves no stale entry)."""
    spec = ROLES_DIR / role / "meta" / "argument_specs.yml"
    assert spec.is_file(), f"{spec.relative_to(ROOT)} is missing"
    declared, defaults = set(options_of(role)), set(defaults_of(role))
    assert not defaults - declared, f"{role}: not declared in its argument spec: {sorted(defaults - declared)}"
    stale = declared - defaults - RENDERED[role]
    assert not stale, f"{role}: declared but neither in defaults/main.yml nor rendered: {sorted(stale)}"
    assert not {n for n in declared if n.startswith("_")}, f"{role}: private variables are not declared"


@pytest.mark.parametrize("role", ROLES)
def test_every_rendered_variable_is_declared(role: str):
    """A variable sovkit renders into the inventory for a role is one the role declares (and so type-checks)."""
    undeclared = RENDERED[role] - set(options_of(role))
    assert not undeclared, f"{role}: rendered by sovkit but not declared: {sorted(undeclared)}"


@pytest.mark.parametrize("role", ROLES)
def test_declared_defaults_are_the_roles_defaults(role: str):
    """Where a spec states a default, it is the one defaults/main.yml really has (the spec documents, the defaults
    decide)."""
    defaults = defaults_of(role)
    wrong = {name: (o["default"], defaults.get(name)) for name, o in options_of(role).items()
             if "default" in o and o["default"] != defaults.get(name)}
    assert not wrong, f"{role}: spec default != defaults/main.yml: {wrong}"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_is_run_by_the_playbooks(role: str):
    """The validation below covers a role on the hosts its plays reach: a role no play runs would go unchecked."""
    assert ROLE_HOSTS.get(role), f"{role}: no play in playbooks/site.yml runs it"


VALIDATED = [(stack, role) for stack in sorted(STACKS) for role in ROLES
             if any(hosts_of(INVENTORIES[stack], p) for p in ROLE_HOSTS.get(role, []))]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_is_validated_on_some_shipped_site(role: str):
    assert any(r == role for _, r in VALIDATED), f"{role}: no shipped stack has a host its plays run it on"


@pytest.mark.parametrize(("stack", "role"), VALIDATED, ids=[f"{s.removeprefix('Pulumi.').removesuffix('.yaml')}-{r}"
                                                             for s, r in VALIDATED])
def test_rendered_variables_pass_the_roles_argument_spec(stack: str, role: str):
    """On every host a play runs the role on, the role's variables as rendered pass Ansible's own validation."""
    inventory = INVENTORIES[stack]
    hosts = {h: v for p in ROLE_HOSTS[role] for h, v in hosts_of(inventory, p).items()}
    errors = {host: found for host, variables in hosts.items() if (found := validation_errors(role, variables))}
    assert not errors, f"{stack}: {role}'s argument spec refuses the rendered variables: {errors}"


@pytest.mark.parametrize(("role", "variables", "message"), [
    ("os_baseline", {"os_baseline_ssh_port": "twenty-two"}, "os_baseline_ssh_port"),
    ("os_baseline", {"os_baseline_file_modes": [{"path": "/etc/passwd", "owner": "root", "group": "root"}]},
     "mode"),
    ("os_baseline", {"os_baseline_apt_sources": [{"uris": "file:/srv/apt", "suites": ["./"], "trust": True}]},
     "trust"),
    ("residency_time_dns", {"residency_time_dns_ntp_servers": {"a": "198.51.100.7"}},
     "residency_time_dns_ntp_servers"),
    ("audit_logging", {"audit_logging_retention_days": "a year"}, "audit_logging_retention_days"),
    ("audit_logging", {"audit_logging_start_auditd": "sometimes"}, "audit_logging_start_auditd"),
    ("data_at_rest", {"data_at_rest_paths": ["/srv/sovkit/models"]}, "data_at_rest_paths"),
    ("data_at_rest", {"data_at_rest_cloud_volume": {"mount": "/srv/sovkit", "volume": "luks"}}, "volume"),
], ids=["port", "file-mode-missing", "apt-source-key", "ntp-not-list", "retention", "start-auditd", "paths",
        "cloud-volume-key"])
def test_a_wrong_type_is_refused(role: str, variables: dict, message: str):
    """The check above can fail: a value of the wrong type or shape is refused, naming it."""
    errors = validation_errors(role, variables)
    assert errors and any(message in e for e in errors), errors


def test_computed_defaults_are_templated_before_they_are_checked():
    """audit_logging_start_auditd and residency_time_dns_start_chrony default to Jinja expressions: templated (as
    the action does) they are booleans, true where no container facts say otherwise."""
    assert validation_errors("audit_logging", {}) == []
    assert validation_errors("residency_time_dns", {"ansible_virtualization_type": "podman"}) == []
