"""The budget keeper on real files with its clock given: budgets spent, marked, and renewed when the period turns,
across logrotate's renames and compressions."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.render import gateway
from sovkit.usage.budget_keeper import Budget, Keeper, budgets_of, next_month, read_entry

ROOT = Path(__file__).resolve().parents[3]


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.at = start

    def __call__(self) -> float:
        return self.at.timestamp()


def line(when: dt.datetime, tenant: str, prompt: int | None, completion: int | None, model: str = "chat") -> str:
    return json.dumps({"time": when.isoformat(), "tenant": tenant, "model": model, "status": 200,
                       "prompt_tokens": prompt, "completion_tokens": completion}) + "\n"


def append(path: Path, *lines: str) -> None:
    with path.open("a") as stream:
        stream.writelines(lines)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    logs, marks = tmp_path / "logs", tmp_path / "marks"
    logs.mkdir()
    marks.mkdir()
    return logs, marks


def mark(marks: Path, tenant: str) -> dict | None:
    path = marks / tenant
    return json.loads(path.read_text()) if path.exists() else None


DAILY = Budget(tokens_per_day=100, tokens_per_month=None, prompt_weight=1.0, completion_weight=2.0)


def test_a_daily_budget_is_spent_refused_and_renewed_the_next_day(site: tuple[Path, Path]) -> None:
    logs, marks = site
    clock = Clock(dt.datetime(2026, 12, 3, 23, 59, 0))
    keeper = Keeper({"library": DAILY}, logs / "access.json", marks, clock)
    append(logs / "access.json", line(clock.at, "library", 30, 10))  # 30 + 2 x 10 = 50 of 100
    keeper.start()
    assert mark(marks, "library") is None
    append(logs / "access.json", line(clock.at, "library", 20, 15), line(clock.at, "other", 900, 900))
    keeper.tick()  # 50 + 20 + 30 = 100: spent; another tenant's tokens are not this one's
    midnight = dt.datetime(2026, 12, 4)
    assert mark(marks, "library") == {"until": int(midnight.timestamp()), "period": "day"}
    assert oct(os.stat(marks / "library").st_mode & 0o777) == "0o644"  # the gateway's workers read it
    clock.at = midnight + dt.timedelta(seconds=1)
    keeper.tick()
    assert mark(marks, "library") is None
    append(logs / "access.json", line(clock.at, "library", 99, 0))
    keeper.tick()
    assert mark(marks, "library") is None  # the new day's count starts from nothing


def test_a_monthly_budget_sums_the_days_and_renews_on_the_first(site: tuple[Path, Path]) -> None:
    logs, marks = site
    monthly = Budget(tokens_per_day=1000, tokens_per_month=150, prompt_weight=1.0, completion_weight=1.0)
    clock = Clock(dt.datetime(2026, 12, 30, 12, 0))
    keeper = Keeper({"library": monthly}, logs / "access.json", marks, clock)
    append(logs / "access.json", line(dt.datetime(2026, 11, 30, 9), "library", 500, 500),  # last month's
           line(dt.datetime(2026, 12, 1, 9), "library", 50, 0), line(dt.datetime(2026, 12, 29, 9), "library", 50, 0))
    keeper.start()
    assert mark(marks, "library") is None
    append(logs / "access.json", line(clock.at, "library", 40, 10))
    keeper.tick()
    assert mark(marks, "library") == {"until": int(dt.datetime(2027, 1, 1).timestamp()), "period": "month"}
    clock.at = dt.datetime(2027, 1, 1, 0, 0, 1)
    keeper.tick()
    assert mark(marks, "library") is None
    assert next_month(dt.datetime(2027, 1, 31, 23)) == dt.datetime(2027, 2, 1)


def test_rotated_logs_are_counted_once_and_the_month_is_reread_on_start(site: tuple[Path, Path]) -> None:
    logs, marks = site
    clock = Clock(dt.datetime(2026, 12, 3, 10, 0))
    live = logs / "access.json"
    with gzip.open(logs / "access.json-20261201.gz", "wt") as old:  # rotated on the 1st: the 1st's first lines
        old.write(line(dt.datetime(2026, 12, 1, 0, 1), "library", 10, 0))
    with gzip.open(logs / "access.json-20261130.gz", "wt") as older:  # only November's
        older.write(line(dt.datetime(2026, 11, 29, 9), "library", 1000, 1000))
    (logs / "access.json-20261202").write_text(line(dt.datetime(2026, 12, 1, 23, 59), "library", 40, 0))
    append(live, line(dt.datetime(2026, 12, 2, 23, 59), "library", 7, 0), line(clock.at, "library", 60, 0))
    keeper = Keeper({"library": DAILY}, live, marks, clock)
    keeper.start()  # today: 60
    append(live, '{"time": "2026-12-03T10:00:01", "tenant": "library", "model": "chat", "prompt_tok')  # half written
    keeper.tick()
    assert mark(marks, "library") is None
    live.rename(logs / "access.json-20261203")  # logrotate: rename, then nginx reopens a new file
    with (logs / "access.json-20261203").open("a") as still_open:
        still_open.write('ens": 25, "completion_tokens": 0}\n')  # the rest of that line, before the reopen
    append(live, line(clock.at, "library", 10, 0))
    keeper.tick()  # 60 + 25 + 10 = 95
    assert mark(marks, "library") is None
    append(live, line(clock.at, "library", 5, 0))
    keeper.tick()
    assert mark(marks, "library")["period"] == "day"
    restarted = Keeper({"library": DAILY}, live, marks, clock)
    restarted.start()  # the same count from the files alone
    assert restarted.spending.by_day == {("library", dt.date(2026, 12, 1)): 50, ("library", dt.date(2026, 12, 2)): 7,
                                         ("library", clock.at.date()): 100}


def test_requests_without_usage_cost_nothing_and_stale_marks_go(site: tuple[Path, Path]) -> None:
    logs, marks = site
    (marks / "former-tenant").write_text('{"until": 9999999999, "period": "day"}\n')
    clock = Clock(dt.datetime(2026, 12, 3, 10, 0))
    append(logs / "access.json", line(clock.at, "library", None, None), "not the gateway's json\n",
           line(clock.at, "", 500, 500))
    keeper = Keeper({"library": DAILY}, logs / "access.json", marks, clock)
    keeper.start()
    assert sorted(p.name for p in marks.iterdir()) == []
    assert keeper.spending.by_day == {("library", clock.at.date()): 0.0}
    assert read_entry(line(clock.at, "library", None, 3)).prompt_tokens is None  # half a usage is none


def test_the_keeper_reads_the_budgets_the_stack_renders() -> None:
    site = load_stack(ROOT / "stacks" / "Pulumi.local.yaml")
    rendered = gateway.budgets(site)
    assert rendered == {"national-library": {"tokens_per_day": 300, "tokens_per_month": None, "prompt_weight": 1.0,
                                             "completion_weight": 2.0}}
    config = json.loads(json.dumps({"tenants": rendered}))  # as the role writes it
    assert budgets_of(config) == {"national-library": Budget(300, None, 1.0, 2.0)}
