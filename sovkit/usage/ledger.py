"""Usage per tenant and model over a period, summed from the gateway's access log lines (the gateway role's
sovkit_json format: one JSON object per request, tokens as the model server counted them, null where it gave none).
Days are the gateways' own: the date in each line's time, as the host's clock wrote it."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from sovkit.usage.budget_keeper import read_entry


@dataclass
class Usage:
    tenant: str
    model: str
    requests: int = 0  # the tenant's key and grant accepted, whatever the answer (rate-limited included)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests_without_usage: int = 0  # refused (rate, model server), failed, or cut before the usage came

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def usage_between(lines: Iterable[str], first: dt.date, last: dt.date) -> list[Usage]:
    """Every (tenant, model) with a request on a day from `first` to `last` (inclusive), sorted. Lines of
    requests refused before a model was chosen (no key, unknown route, a model not granted) carry no model and
    count nowhere; a line that is not the gateway's JSON is skipped."""
    found: dict[tuple[str, str], Usage] = {}
    for entry in filter(None, map(read_entry, lines)):
        if not first <= entry.day <= last:
            continue
        usage = found.setdefault((entry.tenant, entry.model), Usage(entry.tenant, entry.model))
        usage.requests += 1
        if entry.prompt_tokens is None or entry.completion_tokens is None:
            usage.requests_without_usage += 1
        else:
            usage.prompt_tokens += entry.prompt_tokens
            usage.completion_tokens += entry.completion_tokens
    return [found[key] for key in sorted(found)]


FIELDS = ("tenant", "model", "requests", "prompt_tokens", "completion_tokens", "total_tokens",
          "requests_without_usage")


def rows(usages: list[Usage]) -> list[dict[str, object]]:
    return [{**asdict(u), "total_tokens": u.total_tokens} for u in usages]


def write_csv(path: Path, usages: list[Usage]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows(usages))


def write_json(path: Path, usages: list[Usage], *, site: str, first: dt.date, last: dt.date,
               hosts: list[str]) -> None:
    report = {"site": site, "from": first.isoformat(), "to": last.isoformat(), "gateways": hosts,
              "usage": rows(usages)}
    path.write_text(json.dumps(report, indent=2) + "\n")
