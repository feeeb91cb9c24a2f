"""The quality gate without a model server: the local stack's evaluation sets, the harness tasks rendered from the
stack, the verdicts and the grants they withhold, and what the gate refuses before it evaluates anything. (The gate
run for real, against vLLM, is tests/serving/test_gate.py.)"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from click.testing import CliRunner

from sovkit import ports
from sovkit.config import load_stack
from sovkit.gate.cli import gate
from sovkit.gate.run import Endpoint, GateError, default_store_dir, locate_sets, run_gate, write_report
from sovkit.render.evaltasks import task_configs
from sovkit.render.gate import GateReport, SetScore, judge, read_reports, verdicts, withheld_grants
from sovkit.serving import evalsets
from sovkit.stacks import project_root
from sovkit.workspace import SiteWorkspace

LOCAL = project_root() / "stacks" / "Pulumi.local.yaml"
GATED = "tiny-chat"


def local_models() -> dict:
    return copy.deepcopy(yaml.safe_load(LOCAL.read_text())["config"]["sovereign-ai:models"])


def gated_variant(variant, thresholds: dict[str, float]):
    """The local site with other thresholds, its models granted to one tenant (the variant's)."""
    models = local_models()
    models[GATED]["evaluation"]["thresholds"] = thresholds
    return variant("local", models=models)


def report_of(site, scores: dict[str, float], **changes) -> GateReport:
    spec = site.serving.models[GATED]
    sets = [SetScore(name=name, language=s.language, source=s.source, digest=s.digest, items=30, score=scores[name])
            for name, s in spec.evaluation.sets.items()]
    fields = {"site": site.name, "model": GATED, "catalogue": spec.catalogue, "revision": spec.revision,
              "endpoint": "https://gw/v1/chat/completions", "harness": "lm-eval", "started": "2026-01-01T00:00:00",
              "seconds": 1.0, "sets": sets, "verdicts": [], "passed": True}
    return GateReport(**(fields | changes))


def test_the_sets_are_made_offline_and_the_local_stack_names_what_is_made(stacks, tmp_path):
    made = evalsets.build(tmp_path / "a")
    assert evalsets.build(tmp_path / "b") == made
    gate_spec = stacks["local"].serving.models[GATED].evaluation
    assert {name: s.digest for name, s in gate_spec.sets.items()} == made
    for name, evaluation_set in gate_spec.sets.items():
        assert evaluation_set.source.endswith(f"/{evalsets.FOLDER}/{name}.jsonl")
        rows = [json.loads(line) for line in (tmp_path / "a" / f"{name}.jsonl").read_text().splitlines()]
        assert 20 <= len(rows) <= 60 and all(set(row) == {"prompt", "answer"} and row["answer"] for row in rows)
    assert {"prompt": "Ni siku gani inayofuata Jumatatu? Jibu kwa neno moja.", "answer": "Jumanne"} in \
        evalsets.items("sw")


def test_one_task_per_set_reads_its_file_and_scores_exact_match(stacks):
    tasks = task_configs(stacks["local"], GATED, {"everyday-en": "/x/en.jsonl", "everyday-sw": "/x/sw.jsonl"})
    assert sorted(tasks) == ["sovkit-tiny-chat-everyday-en", "sovkit-tiny-chat-everyday-sw"]
    sw = tasks["sovkit-tiny-chat-everyday-sw"]
    assert sw["dataset_path"] == "json" and sw["dataset_kwargs"] == {"data_files": {"test": "/x/sw.jsonl"}}
    assert sw["output_type"] == "generate_until" and sw["generation_kwargs"]["temperature"] == 0.0
    assert [m["metric"] for m in sw["metric_list"]] == ["exact_match"] and sw["metadata"]["language"] == "sw"
    assert task_configs(stacks["local"], "tiny-health", {}) == {}  # no gate, no tasks


def test_each_language_is_judged_by_the_items_of_its_sets():
    scores = [SetScore(name="a", language="sw", source="s", digest="d", items=10, score=1.0),
              SetScore(name="b", language="sw", source="s", digest="d", items=30, score=0.2)]
    [verdict] = judge(scores, {"sw": 0.5})
    assert (verdict.score, verdict.passed, verdict.reason) == (pytest.approx(0.4), False,
                                                               "sw: exact_match 0.40 < threshold 0.50")
    [close] = judge([SetScore(name="a", language="en", source="s", digest="d", items=1000, score=0.499)], {"en": 0.5})
    assert close.reason == "en: exact_match 0.4990 < threshold 0.5000"  # never "0.50 < 0.50"
    [exact] = judge(scores[:1], {"sw": 1.0})
    assert exact.passed and exact.reason == "sw: exact_match 1.00 >= threshold 1.00"


def test_a_failing_language_withholds_the_model_from_every_tenant_granted_it(variant):
    site = gated_variant(variant, {"en": 0.5, "sw": 0.5})
    report = report_of(site, {"everyday-en": 0.9, "everyday-sw": 0.1})
    [withheld] = withheld_grants(site, {GATED: report})
    assert (withheld.tenant, withheld.model) == ("tenant", GATED)
    assert withheld.reason == "sw: exact_match 0.10 < threshold 0.50"
    assert withheld_grants(site, {GATED: report_of(site, {"everyday-en": 0.5, "everyday-sw": 0.5})}) == []


def test_without_a_report_of_this_revision_and_these_sets_the_gate_fails_closed(variant):
    site = gated_variant(variant, {"en": 0, "sw": 0})
    passing = {"everyday-en": 1.0, "everyday-sw": 1.0}
    revision = site.serving.models[GATED].revision
    assert [w.model for w in withheld_grants(site, {})] == [GATED]  # tiny-health has no gate: granted
    assert withheld_grants(site, {})[0].reason.startswith(f"en: not evaluated: no gate report for {GATED} at "
                                                          f"revision {revision}")
    older = report_of(site, passing, revision="sha256:" + "0" * 64)
    assert f"local serves {GATED} at {revision}" in verdicts(site, GATED, older)[0].reason
    other_sets = report_of(site, passing)
    other_sets = other_sets.model_copy(update={"sets": other_sets.sets[:1]})
    assert "other evaluation sets" in verdicts(site, GATED, other_sets)[1].reason
    failed_run = report_of(site, passing, sets=[], error="lm-eval exited with 1: the endpoint answered 401")
    assert [v.reason for v in verdicts(site, GATED, failed_run)] == [
        f"{language}: not evaluated: lm-eval exited with 1: the endpoint answered 401" for language in ("en", "sw")]
    assert verdicts(site, "tiny-health", None) == []


def test_the_report_is_json_that_reads_back(variant, tmp_path):
    site = gated_variant(variant, {"en": 0.5, "sw": 0.5})
    report = report_of(site, {"everyday-en": 0.0, "everyday-sw": 0.0})
    path = write_report(report, tmp_path)
    assert path.name == f"{GATED}.json" and json.loads(path.read_text())["format"] == "sovkit-gate/1"
    assert read_reports(site, tmp_path) == {GATED: report}


def test_a_set_missing_or_changed_stops_the_gate_before_anything_is_evaluated(stacks, tmp_path):
    site = stacks["local"]
    with pytest.raises(GateError, match=r"everyday-en: .*everyday-en.jsonl does not exist"):
        locate_sets(site, GATED, tmp_path)
    evalsets.build(tmp_path / evalsets.FOLDER)
    assert sorted(locate_sets(site, GATED, tmp_path)) == ["everyday-en", "everyday-sw"]
    (tmp_path / evalsets.FOLDER / "everyday-sw.jsonl").write_text('{"prompt": "2+2?", "answer": "4"}\n')
    with pytest.raises(GateError, match=r"everyday-sw: .* has sha256:[0-9a-f]{64}; the stack names sha256:188d"):
        run_gate(site, GATED, Endpoint("https://gw", "k"), tmp_path, tmp_path / "work")
    with pytest.raises(GateError, match="no evaluation"):
        run_gate(site, "tiny-health", Endpoint("https://gw", "k"), tmp_path, tmp_path / "work")


def test_the_local_site_reads_its_store_from_the_bundle(stacks):
    assert default_store_dir(stacks["local"]) == SiteWorkspace.of("local").bundle / "models"


def test_the_command_names_the_models_it_can_gate(tmp_path):
    key = tmp_path / "key"
    key.write_text("k\n")
    result = CliRunner().invoke(gate, ["local", "tiny-health", "--url", "https://gw", "--key-file", str(key)])
    assert result.exit_code == 2 and "tiny-health: not a model of local with an evaluation (tiny-chat)" in \
        result.output


def test_the_command_finds_the_sites_gateway_and_the_gates_own_key_or_says_where_it_would_be(tmp_path,
                                                                                              monkeypatch):
    from sovkit.gate import cli as gate_cli

    workspace = SiteWorkspace.of("local", tmp_path)
    monkeypatch.setattr(gate_cli.SiteWorkspace, "of", classmethod(lambda cls, name, root=None: workspace))
    missing = CliRunner().invoke(gate, ["local", "--store", str(tmp_path)])
    assert missing.exit_code == 2, missing.output
    assert f"{workspace.secrets / 'gate-api-key'} does not exist: the rollout makes it" in " ".join(
        missing.output.split())
    (workspace.secrets).mkdir(parents=True)
    (workspace.secrets / "gate-api-key").write_text("k" * 48 + "\n")
    seen = {}
    monkeypatch.setattr("sovkit.gate.run.run_gate", lambda site, served, endpoint, *a, **k: seen.update(
        url=endpoint.chat_url, key=endpoint.api_key) or (_ for _ in ()).throw(GateError("stop here")))
    stopped = CliRunner().invoke(gate, ["local", "--store", str(tmp_path)])
    assert stopped.exit_code == 2 and "tiny-chat: not evaluated: stop here" in stopped.output, stopped.output
    serving = load_stack(LOCAL).serving_nodes()[0]
    assert seen == {"url": f"https://{serving.address}:{ports.GATEWAY}/v1/chat/completions", "key": "k" * 48}
