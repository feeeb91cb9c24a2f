"""Traceability of every control: catalogue (sovkit/data/controls.yaml) <-> tagged role tasks <->
compliance checks (sovkit/compliance). No host needed: this reads the files.

- every control of the catalogue is implemented by at least one task of its role, named with the id
  and tagged with it, and is evidenced by at least one check carrying @pytest.mark.control(id);
- every control id a task is named or tagged with is in the catalogue and has a check, except the
  `-000` ids, reserved for input validation and preconditions: those tasks may only read and assert
  (proven by test_harden.py's bad-input tests), never change a host;
- every check has a control id from the catalogue and a docstring with its rationale.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from sovkit.config import load_stack
from sovkit.render.inventory import render_inventory
from sovkit.stacks import stack_files
from sovkit.verify.report import load_controls
from sovkit.verify.runner import inventory_hosts

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = ("os_baseline", "residency_network", "residency_time_dns", "audit_logging", "data_at_rest", "gateway",
         "monitoring", "vllm_service", "rke2")
SUITE = REPO_ROOT / "sovkit" / "compliance"
CONTROL_ID = re.compile(r"^SOV-[A-Z]+-\d{3}$")
# Modules a validation (-000) task may use: they read facts or assert, never change anything.
READ_ONLY_MODULES = {"ansible.builtin.assert", "ansible.builtin.setup", "ansible.builtin.set_fact",
                     "ansible.builtin.fail", "ansible.builtin.debug",
                     "sovkit_check"}  # playbooks/action_plugins: runs a check of sovkit/config/checks.py, nothing else


def _tasks(items: list, path: Path):
    for task in items or []:
        yield path, task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key), path)


def role_tasks() -> list[tuple[str, Path, dict]]:
    out = []
    for role in ROLES:
        for path in sorted((REPO_ROOT / "roles" / role).glob("tasks/*.yml")):
            out += [(role, p, t) for p, t in _tasks(yaml.safe_load(path.read_text()), path)]
    return out


def control_tasks() -> list[tuple[str, Path, dict, str]]:
    """(role, file, task, id) for each task whose name starts with a control id."""
    out = []
    for role, path, task in role_tasks():
        match = re.match(r"^(SOV-[A-Z]+-\d{3}) \| (PATCH|AUDIT) \| ", task.get("name", ""))
        if match:
            out.append((role, path, task, match.group(1)))
    return out


def suite_checks() -> list[tuple[str, str, list[str], str | None]]:
    """(file, test function, control ids of its markers, docstring) for each check of the suite."""
    out = []
    for path in sorted(SUITE.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                ids = [dec.args[0].value for dec in node.decorator_list
                       if isinstance(dec, ast.Call) and ast.unparse(dec.func) == "pytest.mark.control"
                       and dec.args and isinstance(dec.args[0], ast.Constant)]
                out.append((path.name, node.name, ids, ast.get_docstring(node)))
    return out


CATALOGUE = load_controls()
CHECKED = {cid for _, _, ids, _ in suite_checks() for cid in ids}


def test_catalogue_is_well_formed():
    """Each control has a valid id, a title, clauses it evidences, a role of this kit, and its CIS
    items (an empty list for residency controls that CIS has no item for)."""
    assert CATALOGUE
    for cid, c in CATALOGUE.items():
        assert CONTROL_ID.match(cid) and not cid.endswith("-000"), cid
        assert c["title"] and c["clauses"] and isinstance(c["cis"], list), cid
        assert c["role"] in ROLES, cid


@pytest.mark.parametrize("cid", sorted(CATALOGUE))
def test_control_is_implemented_and_checked(cid):
    """The control is implemented by a control task of its role tagged with its id (one template may
    implement several controls: its name starts with the first, its tags carry all), and has a check."""
    tasks = [(p, t) for role, p, t, tid in control_tasks() if role == CATALOGUE[cid]["role"]
             and cid in (t.get("tags") or [])]
    assert tasks, f"{cid}: no task of role {CATALOGUE[cid]['role']} is tagged with it"
    assert cid in CHECKED, f"{cid}: no check in sovkit/compliance carries @pytest.mark.control({cid!r})"


def test_every_tagged_control_task_has_a_check():
    """A task named or tagged with a control id cites a catalogued, checked control (or a -000
    validation id), and is tagged with the id its name starts with, so `--tags ID` runs it."""
    problems = []
    for _role, path, task, tid in control_tasks():
        tags = [t for t in (task.get("tags") or []) if str(t).startswith("SOV-")]
        if tid not in (task.get("tags") or []) and not tid.endswith("-000"):
            problems.append(f"{path.name}: {task['name']!r} is not tagged {tid}")
        for cid in {tid, *tags} - {c for c in {tid, *tags} if c.endswith("-000")}:
            if cid not in CATALOGUE:
                problems.append(f"{path.name}: {task['name']!r} cites {cid}, which is not in controls.yaml")
            elif cid not in CHECKED:
                problems.append(f"{path.name}: {task['name']!r} cites {cid}, which no check evidences")
    assert problems == []


def test_validation_tasks_change_nothing():
    """-000 tasks (input validation, preconditions) only read facts or assert: they run before any change."""
    bad = []
    for _role, path, task, tid in control_tasks():
        if tid.endswith("-000"):
            modules = {k for k in task if k.startswith("ansible.")}
            if not modules <= READ_ONLY_MODULES:
                bad.append(f"{path.name}: {task['name']!r} uses {sorted(modules - READ_ONLY_MODULES)}")
    assert bad == []


def test_every_check_has_a_control_and_rationale():
    """Each check carries exactly one catalogued control id and a docstring stating why it matters."""
    problems = []
    for file, name, ids, doc in suite_checks():
        if len(ids) != 1 or ids[0] not in CATALOGUE:
            problems.append(f"{file}::{name}: control markers {ids}")
        if not doc or len(doc) < 20:
            problems.append(f"{file}::{name}: no rationale docstring")
    assert problems == []


def site_variables_read() -> set[str]:
    """Every variable the suite reads from its `site` fixture: site["name"] and site.get("name")."""
    names = set()
    for path in sorted(SUITE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "site":
                key = node.slice
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "site.get" and node.args:
                key = node.args[0]
            else:
                continue
            if isinstance(key, ast.Constant):
                names.add(key.value)
    return names


def test_the_suite_reads_only_variables_the_roles_are_given():
    """A check judges a host by what its roles were given (sovkit/compliance/conftest.py: the roles' defaults under
    the host's inventory variables). A name nothing sets would send the check down its "not configured" branch on
    every site, whatever the stack says."""
    given = set()
    for path in (REPO_ROOT / "roles").glob("*/defaults/main.yml"):
        given |= set(yaml.safe_load(path.read_text()) or {})
    read = site_variables_read()
    assert {"residency_network_inbound", "data_at_rest_cloud_volume"} <= read  # the parser sees both forms
    for stack in stack_files(REPO_ROOT):
        inventory = render_inventory(load_stack(stack))
        for host, variables in inventory_hosts(inventory).items():
            missing = sorted(read - given - set(inventory["all"]["vars"]) - set(variables))
            assert not missing, f"{stack.name} {host}: the suite reads {missing}, which nothing renders"
