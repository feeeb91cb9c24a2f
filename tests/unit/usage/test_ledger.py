"""Usage for chargeback as `sovkit usage` sums it from the gateway's access log: by tenant and model, the days
asked for only, tokens as the model server counted them, and requests that brought no usage counted apart."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from sovkit.usage.budget_keeper import may_hold
from sovkit.usage.ledger import Usage, usage_between, write_csv, write_json

DEC_1, DEC_2, DEC_3 = dt.date(2026, 12, 1), dt.date(2026, 12, 2), dt.date(2026, 12, 3)


def line(day: str, tenant: str, model: str, prompt: int | None, completion: int | None, status: int = 200) -> str:
    return json.dumps({"time": f"{day}T10:00:00+05:30", "request_id": "r", "tenant": tenant, "model": model,
                       "method": "POST", "path": "/v1/chat/completions", "status": status, "latency_s": 0.1,
                       "upstream_latency_s": "0.1", "bytes_out": 10, "prompt_tokens": prompt,
                       "completion_tokens": completion, "client": "198.51.100.9"}, separators=(",", ":"))


LOG = [
    line("2026-11-30", "health", "sarvam-1", 1000, 1000),  # the day before
    line("2026-12-01", "health", "sarvam-1", 11, 5),
    line("2026-12-01", "health", "sarvam-1", 7, 64),
    line("2026-12-02", "health", "llama-3-1-8b", 3, 2),
    line("2026-12-02", "registry", "sarvam-1", None, None, status=429),  # rate-limited: no usage
    line("2026-12-02", "", "", None, None, status=401),  # no key: no tenant, no model
    line("2026-12-02", "health", "", None, None, status=404),  # a model not granted: none chosen
    "198.51.100.9 - - [02/Dec/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 12",  # not the gateway's format
    line("2026-12-04", "health", "sarvam-1", 1000, 1000),  # the day after
]


def test_usage_sums_by_tenant_and_model_over_the_days_asked_only():
    assert usage_between(LOG, DEC_1, DEC_3) == [
        Usage("health", "llama-3-1-8b", requests=1, prompt_tokens=3, completion_tokens=2),
        Usage("health", "sarvam-1", requests=2, prompt_tokens=18, completion_tokens=69),
        Usage("registry", "sarvam-1", requests=1, requests_without_usage=1),
    ]
    assert usage_between(LOG, DEC_2, DEC_2)[0].total_tokens == 5
    assert usage_between(LOG, DEC_3, DEC_3) == []


def test_rotated_logs_are_read_only_when_they_may_hold_the_period():
    assert may_hold("access.json", DEC_2)
    assert may_hold("access.json-20261202", DEC_2)  # rotated that morning: the day's first lines
    assert may_hold("access.json-20261203.gz", DEC_2)
    assert not may_hold("access.json-20261201.gz", DEC_2)  # only days before
    assert not may_hold("error.log-20261203.gz", DEC_2)
    assert not may_hold("access.json-notadate.gz", DEC_2)


def test_the_report_is_written_as_csv_and_json_with_its_period_and_gateways(tmp_path: Path):
    usages = usage_between(LOG, DEC_1, DEC_3)
    write_csv(tmp_path / "u.csv", usages)
    write_json(tmp_path / "u.json", usages, site="in-mh-pune", first=DEC_1, last=DEC_3, hosts=["pune-ai-01"])
    with (tmp_path / "u.csv").open() as stream:
        table = list(csv.DictReader(stream))
    assert table[1] == {"tenant": "health", "model": "sarvam-1", "requests": "2", "prompt_tokens": "18",
                        "completion_tokens": "69", "total_tokens": "87", "requests_without_usage": "0"}
    report = json.loads((tmp_path / "u.json").read_text())
    assert (report["site"], report["from"], report["to"], report["gateways"]) == \
        ("in-mh-pune", "2026-12-01", "2026-12-03", ["pune-ai-01"])
    assert [r["total_tokens"] for r in report["usage"]] == [5, 87, 0]
