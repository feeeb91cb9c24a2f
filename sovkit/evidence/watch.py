"""`sovkit evidence watch STACK`: one scheduled round of evidence (a systemd timer or a CI schedule runs it).

A round verifies the site, packs and signs the run, and compares it with the baseline: the last pack that got no
worse (`.sovkit/<site>/evidence-watch/baseline.tar.gz`). When the new run is worse (a control newly fails, a clause
verdict drops, a host's suite newly cannot run) the baseline stays, so every later round reports the regression
again until it is mended, and the site's own Alertmanager (on loopback of the monitoring host, reached over the
connection the checks use) gets an alert that reaches the stack's receivers. When it is not worse, the new pack
becomes the baseline and a firing alert is resolved.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sovkit.evidence.diff import RunDiff, diff_reports, load_report
from sovkit.evidence.pack import EvidenceError, build_pack
from sovkit.render.alerting import ALERTMANAGER_LISTEN

if TYPE_CHECKING:
    from rich.console import Console

    from sovkit.config import SiteConfig

ALERT_NAME = "SovkitEvidenceRegressed"
BASELINE = "baseline.tar.gz"
STATE = "state.json"
# Exit statuses of a round: the run is no worse than the baseline; it is worse (and the alert was raised); the round
# could not be done (no report, no pack, or the alert could not be handed over).
ROUND_NO_WORSE, ROUND_WORSE, ROUND_NOT_DONE = 0, 1, 2
ANNOTATION_ITEMS = 20  # an alert's description lists this many changes at most (mail subjects and chat stay short)


@dataclass(frozen=True)
class AlertAction:
    """What a round tells Alertmanager: fire (or refresh) the regression alert, or resolve it."""

    firing: bool
    summary: str
    description: str


def regression_lines(diff: RunDiff) -> list[str]:
    """The changes that made a run worse, one line each, worst first."""
    lines = [f"{host}: the suite newly could not run" for host in diff.hosts_broken]
    lines += [f"{c.host}: {c.control} newly failing (was {c.old or 'not run'})" for c in diff.newly_failing]
    lines += [f"{c.cite} ({c.clause}): {c.old or 'not cited'} -> {c.new}" for c in diff.clauses if c.worse]
    return lines


def alert_action(site_name: str, diff: RunDiff | None, was_firing: bool,
                 since: str | None = None) -> AlertAction | None:
    """The alert a round sends: the regression when the run is worse (`since`: the pack the baseline was copied
    from); a resolution when it is not and one fired; nothing otherwise (the first round, which has no baseline,
    and quiet rounds)."""
    if diff is not None and diff.worse:
        lines = regression_lines(diff)
        more = len(lines) - ANNOTATION_ITEMS
        description = "\n".join(lines[:ANNOTATION_ITEMS] + ([f"... and {more} more"] if more > 0 else []))
        return AlertAction(True, f"{site_name}: compliance evidence got worse since {since or Path(diff.old).name}",
                           description + f"\nsee `sovkit evidence diff {diff.old} {diff.new}`")
    if was_firing:
        return AlertAction(False, f"{site_name}: compliance evidence no worse than its baseline again", "")
    return None


def amtool_command(site_name: str, action: AlertAction, listen: str, now: dt.datetime,
                   lasts: dt.timedelta) -> list[str]:
    """amtool's command on the monitoring host. A firing alert ends at now + `lasts` (the round is expected to
    repeat it before then: a watcher that stops lets it lapse rather than fire forever); a resolution ends now."""
    end = now + lasts if action.firing else now
    return ["amtool", f"--alertmanager.url=http://{listen}/", "alert", "add", f"alertname={ALERT_NAME}",
            f"site={site_name}", "severity=critical", f"--annotation=summary={action.summary}",
            f"--annotation=description={action.description}", f"--start={now.isoformat()}",
            f"--end={end.isoformat()}"]


def monitoring_host(inventory: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The host whose Alertmanager the site's alerts go through, with its variables."""
    from sovkit.compliance.conftest import inventory_hosts

    hosts = inventory_hosts(inventory)
    found = sorted(name for name, hvars in hosts.items() if "monitoring" in hvars["group_names"])
    if not found:
        raise ValueError("the rendered inventory has no monitoring host: there is no Alertmanager to alert through")
    return found[0], hosts[found[0]]


def send_alert(inventory: dict[str, Any], command: list[str]) -> str:
    """Run amtool on the monitoring host over the connection the checks use; returns where it ran."""
    import testinfra

    from sovkit.compliance.conftest import host_url

    name, hvars = monitoring_host(inventory)
    result = testinfra.get_host(host_url(hvars)).run(shlex.join(command))
    if result.rc != 0:
        raise RuntimeError(f"{name}: amtool could not hand the alert to Alertmanager (exit {result.rc}): "
                           f"{(result.stderr or result.stdout).strip()[-300:]}")
    return name


@dataclass
class WatchState:
    """What a site's watcher remembers between rounds (`evidence-watch/state.json`)."""

    baseline: str | None = None  # the pack the baseline was copied from
    firing: bool = False
    last_round: str | None = None
    last_pack: str | None = None

    @classmethod
    def read(cls, folder: Path) -> WatchState:
        path = folder / STATE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
            return cls(**{k: data.get(k) for k in ("baseline", "firing", "last_round", "last_pack")})
        except (json.JSONDecodeError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not the watcher's state ({err}); remove it to start "
                             "from the next round") from None

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / STATE).write_text(json.dumps(self.__dict__, indent=2) + "\n")


def compare_with_baseline(folder: Path, pack: Path) -> RunDiff | None:
    """The diff from the baseline to `pack`; None when there is no baseline yet."""
    baseline = folder / BASELINE
    if not baseline.is_file():
        return None
    return diff_reports(load_report(baseline), load_report(pack), str(baseline), str(pack))


def settle(folder: Path, pack: Path, diff: RunDiff | None, state: WatchState, alerted: AlertAction | None,
           now: dt.datetime) -> WatchState:
    """The watcher's state after a round: the pack becomes the baseline unless the run got worse."""
    if diff is None or not diff.worse:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pack, folder / BASELINE)
        state.baseline = pack.name
    if alerted is not None:
        state.firing = alerted.firing
    state.last_round, state.last_pack = now.isoformat(), pack.name
    state.write(folder)
    return state


def run_round(site: SiteConfig, stack: str, identity: Path | None, alert_hours: int, out: Console,
              err: Console) -> int:
    """One round (see the module's doc); returns its exit status (ROUND_*)."""
    import os

    from sovkit.render.inventory import render_inventory
    from sovkit.verify import cli as verify_cli
    from sovkit.workspace import SiteWorkspace

    workspace = SiteWorkspace.of(site.name)
    folder = workspace.evidence_watch
    try:
        state = WatchState.read(folder)
    except ValueError as e:
        err.print(str(e), markup=False)
        return ROUND_NOT_DONE
    report = workspace.compliance / "report.json"
    report.unlink(missing_ok=True)  # the pack must be this round's run, never an earlier one left behind
    verify_cli.run([stack, *(["--identity", str(identity)] if identity else [])])
    if not report.is_file():
        err.print(f"{site.name}: verify wrote no report; nothing to pack or compare", markup=False)
        return ROUND_NOT_DONE
    try:
        pack = build_pack(site, workspace.compliance, workspace.evidence, workspace.evidence_key)
        diff = compare_with_baseline(folder, pack)
    except (EvidenceError, ValueError) as e:
        err.print(str(e), markup=False)
        return ROUND_NOT_DONE
    out.print(f"evidence pack: {pack}", markup=False)
    if diff is None:
        out.print("first round: this pack is the baseline", markup=False)
    else:
        (err if diff.worse else out).print(diff.text(), markup=False)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    action = alert_action(site.name, diff, state.firing, state.baseline)
    sent = None
    if action is not None:
        os.environ.update(verify_cli.connection_env(site, identity))
        inventory = render_inventory(site)
        listen = monitoring_host(inventory)[1].get("monitoring_alertmanager_listen", ALERTMANAGER_LISTEN)
        try:
            where = send_alert(inventory, amtool_command(site.name, action, listen, now,
                                                         dt.timedelta(hours=alert_hours)))
        except RuntimeError as e:
            err.print(f"the alert was not sent: {e}", markup=False)
        else:
            sent = action
            out.print(f"alert {ALERT_NAME} {'raised' if action.firing else 'resolved'} in the Alertmanager of "
                      f"{where}", markup=False)
    settle(folder, pack, diff, state, sent, now)
    if action is not None and sent is None:
        return ROUND_NOT_DONE
    return ROUND_WORSE if diff is not None and diff.worse else ROUND_NO_WORSE
