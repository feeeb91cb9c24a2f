"""The quality gate's verdicts: a gate report (what one run measured, as JSON for the BOM and the evidence) judged
against the stack's thresholds, and which tenants' grants the gateway withholds because of it.

A verdict is always taken against the stack as it is now: a report of another revision or of other sets is no
verdict at all, and a gated model without a passing report is withheld (the gate fails closed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sovkit.config.site import SiteConfig
from sovkit.render.evaltasks import METRIC

REPORT_FORMAT = "sovkit-gate/1"
# lm-eval sends CONCURRENT_REQUESTS (sovkit/gate/run.py) at once, item after item: never held back by the gateway.
GATE_REQUESTS_PER_MINUTE = 6000
GATE_BURST = 100


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SetScore(_Record):
    name: str
    language: str
    source: str  # where the stack says the set lies in the model store
    digest: str  # sha256:<hex> of the file the harness read
    items: int
    score: float


class LanguageVerdict(_Record):
    language: str
    score: float | None  # None: nothing measured
    threshold: float
    passed: bool
    reason: str


class GateReport(_Record):
    format: Literal["sovkit-gate/1"] = REPORT_FORMAT
    site: str
    model: str
    catalogue: str
    revision: str
    endpoint: str  # the OpenAI-compatible URL evaluated (the gateway), never a key
    harness: str  # "lm-eval <version> <model type>"
    metric: str = METRIC
    started: str  # UTC, ISO 8601
    seconds: float
    sets: list[SetScore]
    error: str | None = None  # why the harness measured nothing
    verdicts: list[LanguageVerdict]
    passed: bool


def _figure(score: float, threshold: float) -> tuple[str, str]:
    """Both figures to two places, or more where two would hide which is larger."""
    for places in (2, 4, 6):
        shown = f"{score:.{places}f}", f"{threshold:.{places}f}"
        if (shown[0] == shown[1]) == (score == threshold):
            return shown
    return repr(score), repr(threshold)


def judge(scores: list[SetScore], thresholds: Mapping[str, float], error: str | None = None) -> list[LanguageVerdict]:
    """One verdict per language with a threshold: its score (the sets of that language, weighted by their items)
    against the threshold, with the reason in words ("sw: exact_match 0.00 < threshold 0.50")."""
    verdicts = []
    for language, threshold in thresholds.items():
        mine = [s for s in scores if s.language == language]
        items = sum(s.items for s in mine)
        if error or not items:
            why = error or "no set in this language was scored"
            verdicts.append(LanguageVerdict(language=language, score=None, threshold=threshold, passed=False,
                                            reason=f"{language}: not evaluated: {why}"))
            continue
        score = sum(s.score * s.items for s in mine) / items
        passed = score >= threshold
        shown, bar = _figure(score, threshold)
        reason = f"{language}: {METRIC} {shown} {'>=' if passed else '<'} threshold {bar}"
        verdicts.append(LanguageVerdict(language=language, score=score, threshold=threshold, passed=passed,
                                        reason=reason))
    return verdicts


def verdicts(site: SiteConfig, served: str, report: GateReport | None) -> list[LanguageVerdict]:
    """The model's verdicts under the stack as it is: none for a model without a gate; every language failed when
    the report is missing, of another revision, or scored sets other than the ones the stack names."""
    spec = site.serving.models[served]
    if spec.evaluation is None:
        return []
    thresholds = spec.evaluation.thresholds
    if report is None:
        return judge([], thresholds, error=f"no gate report for {served} at revision {spec.revision}")
    if (report.site, report.model, report.revision) != (site.name, served, spec.revision):
        return judge([], thresholds, error=f"the report is of {report.site}'s {report.model} at revision "
                                           f"{report.revision}; {site.name} serves {served} at {spec.revision}")
    if report.error:
        return judge([], thresholds, error=report.error)
    if {s.name: s.digest for s in report.sets} != {name: s.digest for name, s in spec.evaluation.sets.items()}:
        return judge([], thresholds, error="the report scored other evaluation sets than the stack names (run the "
                                           "gate again)")
    return judge(report.sets, thresholds)


@dataclass(frozen=True, order=True)
class WithheldGrant:
    tenant: str
    model: str
    reason: str


def withheld_grants(site: SiteConfig, reports: Mapping[str, GateReport]) -> list[WithheldGrant]:
    """Every (tenant, model) grant of the stack the gateway must not give: the model has a gate and at least one of
    its languages did not pass (`reports` by served name). Models without a gate are granted as the stack says."""
    withheld = []
    for served in site.serving.models:
        failed = [v.reason for v in verdicts(site, served, reports.get(served)) if not v.passed]
        if failed:
            withheld += [WithheldGrant(tenant, served, "; ".join(failed)) for tenant in site.tenants_of(served)]
    return sorted(withheld)


def gated_models(site: SiteConfig) -> list[str]:
    """The served models with a quality gate, by name."""
    return sorted(m for m, spec in site.serving.models.items() if spec.evaluation is not None)


def read_reports(site: SiteConfig, folder: Path) -> dict[str, GateReport]:
    """The latest report of each model of the site found in `folder` (what `withheld_grants` takes). A file that is
    not a gate report counts as none: its model is withheld until the gate runs again (the gate fails closed)."""
    reports = {}
    for served in site.serving.models:
        try:
            reports[served] = GateReport.model_validate_json((folder / f"{served}.json").read_bytes())
        except (OSError, ValueError):
            continue
    return reports
