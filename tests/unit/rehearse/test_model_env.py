"""What a rehearsal holds each model server to on a serving host, checked here without one: its environment file as
the vllm_service role writes it (its template, rendered as Ansible's template module does) for a GPU site and a CPU
site holds each variable once, exactly the model's and its GPUs', and its own HOME and cache folder; and its API's
listeners, read from `ss`, are told apart by address."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from sovkit.config import load_stack
from sovkit.rehearse.checks import env_file_problem, listen_addresses
from sovkit.render.inventory import render_inventory
from sovkit.verify.runner import inventory_hosts

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "vllm_service"
TEMPLATE = "etc/sovkit/vllm/model.env.j2"


def rendered_env_files(stack: str) -> list[tuple[str, str, dict[str, str]]]:
    """(host/model, the file the role writes, the variables it was given) for each model on each serving host."""
    inventory = render_inventory(load_stack(ROOT / "stacks" / f"Pulumi.{stack}.yaml"))
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    # Ansible's template module: trim_blocks on; an undefined value chains to default() as Ansible's does
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"), trim_blocks=True,
                             undefined=jinja2.ChainableUndefined, autoescape=False)
    template = env.get_template(TEMPLATE)
    out = []
    for host, host_vars in inventory_hosts(inventory).items():
        variables = {**defaults, **inventory["all"]["vars"], **host_vars, "ansible_managed": "managed"}
        if host not in (inventory["all"]["children"].get("serving") or {}).get("hosts", {}):
            continue
        for served, model in variables["vllm_service_models"].items():
            devices = variables["vllm_service_devices"].get(served, {}).get("env", {})
            text = template.render(**variables, item={"key": served, "value": model})
            out.append((f"{host}/{served}", text, {**model["env"], **devices}))
    return out


@pytest.mark.parametrize("stack", ["in-mh-pune", "br-ministerio-cpu"])
def test_each_model_environment_holds_each_variable_once(stack):
    files = rendered_env_files(stack)
    assert files
    for where, text, given in files:
        assert env_file_problem(text, given) == "", f"{where}:\n{text}"
    if stack == "in-mh-pune":  # the GPU site: each model's file names its own GPUs
        assert {where: given["CUDA_VISIBLE_DEVICES"] for where, _, given in files} == {
            "pune-ai-01/sarvam-1": "0", "pune-ai-01/llama-3-1-8b": "1,2"}


@pytest.mark.parametrize(("text", "problem"), [
    ("A=1\nCUDA_VISIBLE_DEVICES=0\nHOME=/h\nXDG_CACHE_HOME=/h/cache\n", ""),
    ("A=1\nXDG_CACHE_CUDA_VISIBLE_DEVICES=0\nHOME=/h\nHOME=/h/cache\n", "HOME set more than once"),
    ("A=1\nCUDA_VISIBLE_DEVICES=0\nHOME=/h\n", "variables"),
    ("A=2\nCUDA_VISIBLE_DEVICES=0\nHOME=/h\nXDG_CACHE_HOME=/h/cache\n", "values"),
    ("A=1\nCUDA_VISIBLE_DEVICES=0\nHOME=/h\nXDG_CACHE_HOME=/elsewhere\n", "values"),
])
def test_the_check_refuses_a_variable_twice_missing_or_changed(text, problem):
    found = env_file_problem("# comment\n" + text, {"A": "1", "CUDA_VISIBLE_DEVICES": "0"})
    assert found.startswith(problem) if problem else found == ""


SS_OUTPUT = """LISTEN 0      4096       127.0.0.1:8000       0.0.0.0:*
LISTEN 0      4096           [::1]:8001          [::]:*
LISTEN 0      511    203.0.113.40:8443       0.0.0.0:*
LISTEN 0      4096         0.0.0.0:8002       0.0.0.0:*
LISTEN 0      4096               *:8003             *:*
"""


@pytest.mark.parametrize(("port", "addresses"), [(8000, ["127.0.0.1"]), (8001, ["[::1]"]), (8002, ["0.0.0.0"]),
                                                 (8003, ["*"]), (9, [])])
def test_the_listeners_of_a_port_are_read_from_ss(port, addresses):
    """What the rehearsal reads on a serving host to hold each model server to loopback."""
    assert listen_addresses(SS_OUTPUT, port) == addresses
