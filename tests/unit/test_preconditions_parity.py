"""`sovkit validate` and the plays agree: every shipped stack and every file of the bad-stack corpus goes through
both, and for every input a role checks before it changes anything, the verdicts are the same.

The plays' verdict comes from the roles' own precondition tasks (each role's tasks/validate.yml, as the plays
include them), run by ansible-playbook on this machine (a local connection: the checks run on the controller)
over the inventory sovkit renders for each stack. A stack the loader refuses before its values have a shape
(a typo in a key, broken YAML) never reaches a play; it is counted, not compared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sovkit.config import PROJECT, load_stack
from sovkit.config import loader as config_loader
from sovkit.errors import StackError
from sovkit.render import role_vars
from sovkit.render.inventory import render_inventory
from sovkit.render.vllm_args import PlanError
from sovkit.stacks import stack_files

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "data" / "bad-stacks").glob("*.yaml"))
STACK_FILES = [*stack_files(ROOT), *CORPUS]
CHECKED_ROLES = sorted({p.role for p in role_vars.PRECONDITIONS})
SERVING_ROLES = ("gateway", "model_store")  # run by serve.yml, on hosts-mode sites only
# run by platform.yml, on RKE2 sites only (kubernetes mode, no kubeconfig): the variable that marks them
RKE2_ROLES = {"rke2": "rke2_artifacts_url"}
# What the converge pipeline adds for the roles' own checks (secrets): valid, so only the stack's inputs decide.
RUN_FACTS = {"gateway_tenant_key_hashes": {}, "gateway_upstream_api_key": "u" * 48, "rke2_token": "t" * 48,
             "rke2_server_environment": "AWS_ACCESS_KEY_ID=k\nAWS_SECRET_ACCESS_KEY=s\n"}


def validate_verdict(path: Path) -> tuple[set[str] | None, object]:
    """(the checked variables whose stack key validate refuses, the site as rendered without the cross-field rules),
    or (None, None) when the file never gets a shape."""
    try:
        load_stack(path)
        refused: set[str] = set()
    except StackError as err:
        keys = {p.key_path for p in err.problems}
        # the serving roles run on hosts-mode sites only
        hosts_mode = "mode: kubernetes" not in path.read_text(errors="replace")
        refused = {p.variable for p in role_vars.PRECONDITIONS if any(re.match(_pattern(p), k) for k in keys)
                   and (hosts_mode or p.role not in SERVING_ROLES)}
    original = config_loader.rules.check
    config_loader.rules.check = lambda *_a, **_k: []  # the same loading, without the cross-field rules
    try:
        site = config_loader.load_stack(path)
    except StackError:
        return None, None
    finally:
        config_loader.rules.check = original
    return refused, site


def _pattern(precondition: role_vars.Precondition) -> str:
    """The stack key paths a precondition's check covers."""
    key = rf"{re.escape(PROJECT)}:{precondition.stack_key}"
    if precondition.covers:
        # the fields it reads of each entry, or the entry as a whole (its name)
        return rf"{key}\.[^.]+(\.({'|'.join(precondition.covers)})(\b|[.\[]|$)|$)"
    return rf"{key}(\b|[.\[])"


def host_vars(site: object) -> dict:
    inventory = render_inventory(site)  # type: ignore[arg-type]
    first = next(iter(next(iter(inventory["all"]["children"].values()))["hosts"].values()))
    # a hash for every tenant the gateway is given, the quality gate's own among them, as the converge pipeline makes
    tenants = inventory["all"]["vars"].get("gateway_tenants", site.serving.tenants)  # type: ignore[attr-defined]
    facts = dict(RUN_FACTS, gateway_tenant_key_hashes=dict.fromkeys(tenants, "0" * 64))
    return {**inventory["all"]["vars"], **first, **facts, "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable, "residency_network_controller_address": ""}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[set[str], set[str]]]:
    """{stack file: (validate's refused variables, the plays' refused variables)} for every stack with a shape."""
    workdir = tmp_path_factory.mktemp("parity")
    hosts, refused_by_validate = {}, {}
    for i, path in enumerate(STACK_FILES):
        refused, site = validate_verdict(path)
        if site is None:
            continue
        name = f"stack{i}"
        try:
            hosts[name] = host_vars(site)
        except (PlanError, KeyError):  # a model that does not fit or is not in the catalogue: nothing renders
            continue
        refused_by_validate[name] = (path.name, refused)
    (workdir / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    # As the plays include them; the serving roles' only where a site serves in hosts mode (serve.yml's hosts).
    tasks = [{"name": f"The {role} role's checks", "ansible.builtin.include_role": {
        "name": role, "tasks_from": "validate.yml", "apply": {"ignore_errors": True}},
        **({"when": "gateway_tenants is defined"} if role in SERVING_ROLES else {}),
        **({"when": f"{RKE2_ROLES[role]} is defined"} if role in RKE2_ROLES else {})} for role in CHECKED_ROLES]
    play = [{"name": "Every role's input checks", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    (workdir / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "json",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(workdir / "inventory.yml"),
                           "--forks", "20", str(workdir / "play.yml")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    refused_by_plays: dict[str, set[str]] = {name: set() for name in hosts}
    for play_result in report["plays"]:
        for task in play_result["tasks"]:
            for host, outcome in task["hosts"].items():
                if outcome.get("failed"):
                    match = re.match(r"^(\w+)", outcome.get("msg", ""))
                    assert match, outcome
                    refused_by_plays[host].add(match.group(1))
    return {label: (refused, refused_by_plays[name]) for name, (label, refused) in refused_by_validate.items()}


def test_validate_and_the_plays_refuse_the_same_inputs(verdicts):
    differ = {stack: {"validate": sorted(v), "plays": sorted(p)} for stack, (v, p) in verdicts.items() if v != p}
    assert differ == {}


def test_the_comparison_covers_the_shipped_sites_and_most_of_the_corpus(verdicts):
    for path in stack_files(ROOT):
        assert verdicts[path.name] == (set(), set()), path.name  # every shipped site passes both
    assert len(verdicts) >= len(stack_files(ROOT)) + 20, sorted(verdicts)


def test_every_checked_input_is_refused_by_both_somewhere_in_the_corpus(verdicts):
    """The agreement is not only on passing: each check refuses at least one corpus file, in both."""
    refused = set().union(*(v & p for v, p in verdicts.values()))
    assert refused == {p.variable for p in role_vars.PRECONDITIONS}


def role_check_tasks() -> dict[str, dict]:
    """{checked variable: its sovkit_check arguments} over every role's tasks/validate.yml."""
    out = {}
    for path in sorted((ROOT / "roles").glob("*/tasks/validate.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            if "sovkit_check" in task:
                out[task["sovkit_check"]["name"]] = task["sovkit_check"]
    return out


@pytest.mark.parametrize("precondition", role_vars.PRECONDITIONS, ids=lambda p: p.variable)
def test_each_role_runs_its_check_on_the_rendered_variables(precondition):
    """A role's task passes the check exactly the variables PRECONDITIONS names, never a value re-derived in Jinja
    (what validate judged is what the role judges)."""
    task = role_check_tasks()[precondition.variable]
    assert task["check"] == precondition.check
    assert re.fullmatch(rf"\{{\{{ {precondition.variable}( \| int)? \}}\}}", task["value"]), task["value"]
    assert task.get("args", {}) == {arg: f"{{{{ {variable} }}}}" for arg, variable in precondition.args.items()}
