"""The `sovkit usage STACK` command (registered in sovkit.cli with ``main.add_command(usage)``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

# Exit codes: 0 the report is complete; 1 a gateway's log could not be read (no report: it would bill too little);
# 2 the stack could not be loaded.
EXIT_UNREADABLE = 1


def _day(value: str | None, default: dt.date) -> dt.date:
    if value is None:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day (YYYY-MM-DD)") from None


@click.command("usage")
@click.argument("stack")
@click.option("--from", "first", metavar="YYYY-MM-DD", help="First day.  [default: the 1st of this month]")
@click.option("--to", "last", metavar="YYYY-MM-DD", help="Last day, included.  [default: today]")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path),
              help="Where usage-FROM-TO.csv and .json are written.  [default: .sovkit/<site>/usage]")
def usage(stack: str, first: str | None, last: str | None, output_dir: Path | None) -> None:
    """Usage per tenant and model for chargeback: requests and the tokens each model server counted (prompt and
    completion), read from every gateway's access log (kept on the site's hosts for its logRetentionDays), for the
    days FROM to TO as the gateways' clocks write them. Prints a table and writes it as CSV and JSON."""
    from sovkit.clitools import load_site
    from sovkit.render.inventory import render_inventory
    from sovkit.usage.collect import UsageReadError, gateway_log_lines
    from sovkit.usage.ledger import usage_between, write_csv, write_json
    from sovkit.workspace import SiteWorkspace

    today = dt.date.today()
    start, end = _day(first, today.replace(day=1)), _day(last, today)
    if start > end:
        raise click.BadParameter(f"--from {start} is after --to {end}")
    site = load_site(stack)
    console = Console(highlight=False, soft_wrap=True)
    lines: list[str] = []
    hosts: list[str] = []
    try:
        for host, host_lines in gateway_log_lines(render_inventory(site), start):
            hosts.append(host)
            lines.extend(host_lines)
    except UsageReadError as err:
        Console(stderr=True, highlight=False).print(f"no usage report: {err}", markup=False)
        raise SystemExit(EXIT_UNREADABLE) from None
    usages = usage_between(lines, start, end)
    out = output_dir or SiteWorkspace.of(site.name).state_dir / "usage"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"usage-{start.isoformat()}-{end.isoformat()}"
    write_csv(out / f"{stem}.csv", usages)
    write_json(out / f"{stem}.json", usages, site=site.name, first=start, last=end, hosts=hosts)
    table = Table(title=f"{site.name}: usage {start} to {end} ({', '.join(hosts) or 'no gateway'})")
    for column in ("tenant", "model", "requests", "prompt tokens", "completion tokens", "total tokens",
                   "without usage"):
        table.add_column(column, justify="left" if column in ("tenant", "model") else "right")
    for u in usages:
        table.add_row(u.tenant, u.model, str(u.requests), str(u.prompt_tokens), str(u.completion_tokens),
                      str(u.total_tokens), str(u.requests_without_usage))
    console.print(table)
    console.print(f"written: {out / stem}.csv, {out / stem}.json", markup=False)
