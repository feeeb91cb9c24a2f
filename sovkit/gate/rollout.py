"""The quality gate in the rollout (hosts mode), run by the converge pipeline after the play, so `pulumi up`,
`sovkit up` and `sovkit rehearse` all gate the same way.

The play renders each tenant's grants less what the gate reports withhold (a gated model without a passing report
of its current revision and sets is withheld: the gate fails closed), and grants the gate's own tenant every gated
model. Then each gated model without such a report is evaluated through the gateway with the gate's key; when the
verdicts change what tenants are granted, the gateway's tenants file alone is written again (the play's
GRANTS_TAG). A model whose current report passes is not evaluated again: a re-run changes nothing."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sovkit import ports
from sovkit.config.site import SiteConfig
from sovkit.gate.run import Endpoint, GateError, Wrap, default_store_dir, run_gate, write_report
from sovkit.phases import Progress
from sovkit.render.gate import WithheldGrant, gated_models, read_reports, verdicts, withheld_grants
from sovkit.render.gateway import tenant_grants
from sovkit.verify.runner import inventory_hosts
from sovkit.workspace import SiteWorkspace

GRANTS_TAG = "gateway-grants"  # the gateway role's task that writes the tenants file (key hashes and grants)
GRANTS_GROUP = "serving"  # the inventory group whose hosts run a gateway


@dataclass(frozen=True)
class GateOutcome:
    model: str
    passed: bool
    evaluated: bool  # evaluated in this rollout; False: its current report stands
    reasons: list[str]  # a line per language, or why nothing was evaluated
    seconds: float = 0.0


@dataclass(frozen=True)
class GateRollout:
    outcomes: list[GateOutcome]
    withheld: list[WithheldGrant]
    regranted: bool  # the tenants file was written again with the new grants
    seconds: float  # what the gate added to the rollout: evaluations and the new grants
    inventory: dict = field(repr=False, default_factory=dict)  # the inventory the site now runs with

    def lines(self) -> list[str]:
        """The summary a person reads: each gated model's verdict, then what stays withheld."""
        out = []
        for o in self.outcomes:
            state = "passed" if o.passed else "FAILED"
            how = f"evaluated in {o.seconds:.1f} s" if o.evaluated else "its current report stands"
            out.append(f"gate: {o.model} {state} ({how}): " + "; ".join(o.reasons))
        for model in sorted({w.model for w in self.withheld}):
            tenants = ", ".join(w.tenant for w in self.withheld if w.model == model)
            out.append(f"gate: {model} is withheld from {tenants}")
        return out


def gate_endpoint(site: SiteConfig, inventory: dict, workspace: SiteWorkspace, key: str) -> Endpoint:
    """The first serving host's gateway, at the address the play reached it by, trusting the site CA."""
    address = str(inventory_hosts(inventory)[site.serving_nodes()[0].name]["sovkit_address"])
    host = f"[{address}]" if ":" in address else address
    ca = workspace.pki / "ca.crt"
    return Endpoint(f"https://{host}:{ports.GATEWAY}", key, ca if ca.is_file() else None)


def gate_and_grant(site: SiteConfig, inventory: dict, workspace: SiteWorkspace, key: str, *,
                   regrant: Callable[[dict], None], wrap: Wrap | None = None,
                   progress: Progress = lambda _: None) -> GateRollout:
    """Evaluates each gated model whose current report does not pass, writes its report, and calls `regrant` with
    the inventory of the new grants when they differ from those the play wrote."""
    started = time.monotonic()
    reports = read_reports(site, workspace.gate)
    endpoint = gate_endpoint(site, inventory, workspace, key)
    store_dir = default_store_dir(site, workspace)
    outcomes = []
    for served in gated_models(site):
        current = verdicts(site, served, reports.get(served))
        if all(v.passed for v in current):
            outcomes.append(GateOutcome(served, True, False, [v.reason for v in current]))
            continue
        progress(f"  gate: evaluating {served} through {endpoint.chat_url}")
        clock = time.monotonic()
        try:
            if store_dir is None:
                raise GateError(f"the model store {site.residency.model_store} is not a folder on this machine")
            report = run_gate(site, served, endpoint, store_dir, workspace.gate / served, wrap=wrap)
        except GateError as err:
            outcomes.append(GateOutcome(served, False, False, [f"not evaluated: {err}"]))
            continue
        write_report(report, workspace.gate)
        reports[served] = report
        outcomes.append(GateOutcome(served, report.passed, True, [v.reason for v in report.verdicts],
                                    round(time.monotonic() - clock, 1)))
    withheld = withheld_grants(site, reports)
    grants = tenant_grants(site, withheld)
    regranted = grants != inventory["all"]["vars"]["gateway_tenants"]
    if regranted:
        inventory = copy.deepcopy(inventory)
        inventory["all"]["vars"]["gateway_tenants"] = grants
        progress("  gate: writing the gateway's grants again")
        regrant(inventory)
    return GateRollout(outcomes, withheld, regranted, round(time.monotonic() - started, 1), inventory)
