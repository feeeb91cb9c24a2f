"""The sovkit command line as an operator uses it: exit codes, messages, files written."""

import json
import re
from pathlib import Path

import pytest
import yaml

from sovkit.cli import run
from sovkit.config import load_stack
from sovkit.verify.report import load_controls

ROOT = Path(__file__).parents[2]
BAD = ROOT / "tests" / "data" / "bad-stacks"


@pytest.fixture(autouse=True)
def in_project(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_validate_all_shipped_stacks(capsys):
    assert run(["validate"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^5 valid, 0 invalid", out, re.M), out


def test_validate_reports_a_bad_stack_and_fails(capsys):
    assert run(["validate", "stacks/Pulumi.local.yaml", str(BAD / "05-tensor-parallel-not-dividing.yaml")]) == 1
    captured = capsys.readouterr()
    assert "1 valid, 1 invalid" in captured.out
    assert "sovereign-ai:models.qwen2-5-14b.tensorParallel" in captured.err


def test_validate_unknown_stack_names_the_known_ones(capsys):
    assert run(["validate", "atlantis"]) == 2
    known = "stacks here: br-ministerio-cpu, id-sulsel-cloud, in-mh-pune, local, za-national-dc"
    assert known in capsys.readouterr().err


def test_show_tells_where_each_value_came_from(capsys):
    assert run(["show", "local", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    values = {v["key"]: v for v in shown["values"]}
    assert values["sovereign-ai:country"] == {"section": "site", "key": "sovereign-ai:country", "value": "KE",
                                              "from": "stack file"}
    assert values["sovereign-ai:logRetentionDays"]["from"].startswith("country profile ke")
    assert values["sovereign-ai:cisProfile"]["from"] == "sovkit default"


def test_show_prints_the_law_and_its_clauses(capsys):
    assert run(["show", "za-national-dc"]) == 0
    out = capsys.readouterr().out
    assert "Protection of Personal Information Act" in out and "POPIA s. 72" in out


def test_show_controls_lists_the_cis_mapping(capsys):
    """`show --controls` needs no stack: the controls with their CIS items, then each Level 1 Server item with its
    status (an implemented one with its control, a waived one with its reason) and the counts."""
    assert run(["show", "--controls"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  SOV-OS-001 +SSH is key-only and root cannot log in$", out, re.M), out
    assert re.search(r"^  5\.1\.20 +implemented +SOV-OS-001 +Ensure sshd PermitRootLogin is disabled", out, re.M)
    assert re.search(r"^  1\.7\.2 +waived +Ensure GDM login banner is configured.*\n +why: Headless server", out, re.M)
    assert re.search(r"^Level 1 Server: \d+ implemented, \d+ waived, \d+ out of scope, of 249 items$", out, re.M)


def test_show_controls_as_json_counts_add_up(capsys):
    assert run(["show", "--controls", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    counts = shown["summary"]
    statuses = [i["status"] for i in shown["items"]]
    assert counts["total"] == len(shown["items"]) == 249
    assert counts["implemented"] + counts["waived"] + counts["out_of_scope"] == counts["total"]
    assert (statuses.count("implemented"), statuses.count("waived"), statuses.count("out of scope")) == (
        counts["implemented"], counts["waived"], counts["out_of_scope"])
    items = {i["id"]: i for i in shown["items"]}
    assert "SOV-OS-001" in items["5.1.20"]["controls"]
    assert items["1.4.1"]["status"] == "waived" and items["1.4.1"]["reason"]
    assert {c["id"]: c["cis"] for c in shown["controls"]} == {cid: c["cis"] for cid, c in load_controls().items()}


def test_show_needs_a_stack_or_controls(capsys):
    assert run(["show"]) == 2
    assert "show needs a STACK" in capsys.readouterr().err
    assert run(["show", "local", "--controls"]) == 2
    assert "drop 'local'" in capsys.readouterr().err


def test_new_site_scaffold_is_refused_until_filled_then_validates(tmp_path, capsys):
    target = tmp_path / "Pulumi.ke-kisumu.yaml"
    assert run(["new-site", "--country", "KE", "--name", "ke-kisumu", "--output", str(target)]) == 0
    assert run(["validate", str(target)]) == 1
    err = capsys.readouterr().err
    todo_count = target.read_text().count('"TODO')
    assert err.count("in place of the TODO marker") == todo_count > 15
    filled = target.read_text()
    for todo, value in FILLED.items():
        filled = filled.replace(f'"TODO: {todo}"', value)
    assert "TODO:" not in filled
    target.write_text(filled)
    assert run(["validate", str(target)]) == 0, capsys.readouterr().err
    assert load_stack(target).site.country == "KE"


def test_new_site_never_overwrites(tmp_path, capsys):
    target = tmp_path / "Pulumi.x-site.yaml"
    target.write_text("keep me")
    assert run(["new-site", "--country", "KE", "--name", "x-site", "--output", str(target)]) == 2
    assert target.read_text() == "keep me"


def test_new_site_refuses_a_bad_country(capsys):
    assert run(["new-site", "--country", "XX", "--name", "x-site", "--output", "/nonexistent/x"]) == 2
    assert "ISO 3166-1 alpha-2" in capsys.readouterr().err


def test_inventory_is_deterministic_yaml_grouped_by_role(capsys):
    assert run(["inventory", "za-national-dc"]) == 0
    first = capsys.readouterr().out
    assert run(["inventory", "za-national-dc"]) == 0
    assert capsys.readouterr().out == first
    inventory = yaml.safe_load(first)["all"]
    assert sorted(inventory["children"]) == ["control_plane", "gpu_worker", "rke2_agents", "rke2_gpu_nodes",
                                             "rke2_servers", "storage"]
    gpu = inventory["children"]["gpu_worker"]["hosts"]["gpu-02"]
    connection = {k: gpu[k] for k in ("ansible_host", "sovkit_address", "ansible_user", "ansible_port", "sovkit_role",
                                      "sovkit_node_accelerator")}
    assert connection == {"ansible_host": "198.51.100.22", "sovkit_address": "198.51.100.22", "ansible_user": "sovkit",
                          "ansible_port": 22, "sovkit_role": "gpu_worker",
                          "sovkit_node_accelerator": {"model": "H100-SXM5-80GB", "count": 8}}
    assert gpu["os_baseline_ssh_port"] == gpu["residency_network_ssh_port"] == 22
    residency = inventory["vars"]["sovkit_residency"]
    assert residency["log_retention_days"] == 400
    assert residency["allowed_endpoints"][0]["host"] == "192.0.2.80"
    assert inventory["vars"]["sovkit_profile"]["clauses"]["cross_border_transfer"] == {
        "cite": "POPIA s. 72", "title": "Transfers of personal information outside Republic"}


def test_local_inventory_reaches_containers_through_podman(capsys):
    assert run(["inventory", "local"]) == 0
    hosts = yaml.safe_load(capsys.readouterr().out)["all"]["children"]["cpu_worker"]["hosts"]
    assert hosts["local-cpu-worker-1"]["ansible_connection"] == "sovkit_podman"


FILLED = {
    "province or state": "Kisumu County",
    "city of the data centre": "Kisumu",
    "team that operates the site": "County ICT",
    "contact address of that team": "ict@kisumu.go.example",
    "management address": "198.51.100.40",
    "accelerator model (see sovkit/data/accelerators.yaml)": "L4-24GB",
    "in-country network the hosts and their users are on, CIDR": "198.51.100.0/24",
    "DNS suffix of in-country services, e.g. dc.gov.xx": "kisumu.go.example",
    "in-country NTP server address": "198.51.100.123",
    "approved DNS resolver address": "198.51.100.53",
    "in-country Debian mirror URL": "http://mirror.kisumu.go.example/debian",
    "in-country container registry host": "registry.kisumu.go.example",
    "in-country model store, s3:// URL or path": "/srv/sovkit/models",
    "file:///path or s3://bucket?endpoint=in-country-host": "file:///srv/sovkit/state",
    "network administrators reach SSH from, inside inCountryCidrs": "198.51.100.0/28",
    "NVIDIA driver version to install, branch 580 or later": '"580.95.05"',
    "in-country mirror of NVIDIA's Debian 12 repository": "http://mirror.kisumu.go.example/nvidia-cuda/debian12/x86_64",
    "path of the repository's signing key on this machine": "/etc/sovkit/keys/nvidia-cuda-archive.asc",
    "model catalogue entry": "llama-3.1-8b-instruct",
    "where the weights are in the model store": "/srv/sovkit/models/llama-3.1-8b-instruct",
    "sha256: digest of the weights' SHA256SUMS (or a git commit, kubernetes mode)":
        "sha256:" + "0e9e39f2" * 8,
    "BCP-47 tag": "en",
}


def test_rehearse_refuses_a_vm_the_site_does_not_have_before_anything_starts(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SOVKIT_CACHE_DIR", str(tmp_path / "cache"))  # nothing may be built there
    assert run(["rehearse", "za-national-dc", "--vm", "cp-09"]) == 1
    err = capsys.readouterr().err
    assert "--vm cp-09: the site has no such host or role" in err and "store-01" in err and "storage" in err
    assert not (tmp_path / "cache").exists()


def test_rehearse_refuses_a_vm_for_the_local_site(capsys):
    assert run(["rehearse", "local", "--vm", "local-01"]) == 2
    assert "--vm: the local site's hosts run on this machine" in capsys.readouterr().err
