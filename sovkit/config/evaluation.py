"""The stack rule of the local-language quality gate: a model's evaluation sets come from the in-country model store,
and every language the model serves has a threshold and at least one set that tests it (a language left untested
would be granted to tenants unjudged)."""

from __future__ import annotations

from collections.abc import Iterable

from sovkit.config.locations import under_store
from sovkit.config.schema import PROJECT
from sovkit.config.site import SiteConfig
from sovkit.errors import Problem, short

SET_SUFFIX = ".jsonl"
SET_FIELDS = ("prompt", "answer")  # what each line of a set holds; the gate renders its tasks from these


def evaluation_gates(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    store = site.residency.model_store
    for served, model in site.serving.models.items():
        gate = model.evaluation
        if gate is None:
            continue
        base = f"{PROJECT}:models.{served}.evaluation"
        if site.platform.mode != "hosts":
            yield Problem(base, f"an evaluation gate in {site.platform.mode} mode",
                          "evaluation gates only in hosts mode (the kit's gateway, which withholds a model from "
                          "tenants until it passes, runs in hosts mode only)")
            continue
        for name, evaluation_set in gate.sets.items():
            where = f"{base}.sets.{name}"
            if not evaluation_set.source.endswith(SET_SUFFIX):
                yield Problem(f"{where}.source", short(evaluation_set.source),
                              f"a {SET_SUFFIX} file: one JSON object a line, with {' and '.join(SET_FIELDS)}")
            elif not under_store(evaluation_set.source, store):
                yield Problem(f"{where}.source", short(evaluation_set.source),
                              f"a file under the in-country model store {store}",
                              fix="copy the set into the model store and name that copy")
            if evaluation_set.language not in gate.thresholds:
                yield Problem(f"{where}.language", short(evaluation_set.language),
                              "a language with a threshold: " + ", ".join(gate.thresholds))
        tested = {s.language for s in gate.sets.values()}
        for language in gate.thresholds:
            if language not in model.languages:
                yield Problem(f"{base}.thresholds.{language}", short(language),
                              f"a language {served} serves: " + ", ".join(model.languages))
            elif language not in tested:
                yield Problem(f"{base}.thresholds.{language}", f"no set in {language}",
                              f"a threshold only for a language one of the sets tests ({', '.join(sorted(tested))})",
                              fix=f"add an evaluation set in {language} from the model store")
        untested = [language for language in model.languages if language not in gate.thresholds]
        if untested:
            yield Problem(f"{base}.thresholds", "no threshold for " + ", ".join(untested),
                          f"a threshold for every language {served} serves: " + ", ".join(model.languages),
                          fix="a language without a threshold would reach tenants unjudged")
