"""The budget keeper: a small service beside each hosts-mode gateway that keeps the tenants' token budgets.

It follows the gateway's JSON access log (tokens as the model servers counted them), sums each budgeted tenant's
weighted tokens per day and per month of the host's calendar, and marks a tenant whose budget is spent: a file
named for the tenant in the marks folder, holding `{"until": <seconds since the epoch>, "period": "day"|"month"}`,
when the spent period turns. The gateway refuses a marked tenant's model calls with 429 and Retry-After until then;
the keeper removes the mark when the period turns (the gateway also ignores a mark whose time has passed).

A request is checked when it arrives, so requests in flight when a budget runs out complete: a tenant can overspend
by what those requests use. If the keeper stops, its marks go with its runtime folder and budgets are not enforced
until systemd restarts it (it rereads the month's logs on start).

It runs alone on the host with Python's standard library (the gateway role copies this one file), so the reading of
the access log that `sovkit usage` shares on the controller lives here too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# The live log, and those logrotate renamed (dateext: named for the day they were rotated, compressed a day later).
LIVE_LOG = "access.json"
ROTATED_PREFIX = f"{LIVE_LOG}-"


@dataclass(frozen=True)
class Entry:
    """One answered request of a tenant to a model (requests refused before a model was chosen carry neither)."""

    day: dt.date  # as the gateway host's clock wrote the line
    tenant: str
    model: str
    prompt_tokens: int | None  # None where the model server gave no usage (refused, failed, cut)
    completion_tokens: int | None


def read_entry(line: str) -> Entry | None:
    """A line of the gateway's sovkit_json access log, or None for one that names no tenant and model or is not the
    gateway's JSON."""
    try:
        found = json.loads(line)
        day = dt.date.fromisoformat(found["time"][:10])
        tenant, model = found["tenant"], found["model"]
    except (ValueError, KeyError, TypeError):
        return None
    if not tenant or not model or not isinstance(tenant, str) or not isinstance(model, str):
        return None
    prompt, completion = found.get("prompt_tokens"), found.get("completion_tokens")
    if not (isinstance(prompt, int) and isinstance(completion, int)):
        prompt = completion = None
    return Entry(day, tenant, model, prompt, completion)


def may_hold(file_name: str, first: dt.date) -> bool:
    """Whether a file of the gateway's log folder may hold lines from `first` on: the live log, or one rotated on or
    after that day (older ones hold only earlier days)."""
    if file_name == LIVE_LOG:
        return True
    if not file_name.startswith(ROTATED_PREFIX):
        return False
    stamp = file_name[len(ROTATED_PREFIX):].removesuffix(".gz")
    try:
        return dt.datetime.strptime(stamp, "%Y%m%d").date() >= first
    except ValueError:
        return False


@dataclass(frozen=True)
class Budget:
    tokens_per_day: int | None
    tokens_per_month: int | None
    prompt_weight: float
    completion_weight: float

    def cost(self, entry: Entry) -> float:
        if entry.prompt_tokens is None or entry.completion_tokens is None:
            return 0.0
        return entry.prompt_tokens * self.prompt_weight + entry.completion_tokens * self.completion_weight


def next_day(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())


def next_month(now: dt.datetime) -> dt.datetime:
    return dt.datetime(now.year + now.month // 12, now.month % 12 + 1, 1)


class Spending:
    """Weighted tokens per tenant and day, for the current month."""

    def __init__(self, budgets: dict[str, Budget]) -> None:
        self.budgets = budgets
        self.by_day: dict[tuple[str, dt.date], float] = {}

    def add(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            budget = self.budgets.get(entry.tenant)
            if budget is not None:
                key = (entry.tenant, entry.day)
                self.by_day[key] = self.by_day.get(key, 0.0) + budget.cost(entry)

    def forget_before(self, first: dt.date) -> None:
        self.by_day = {key: spent for key, spent in self.by_day.items() if key[1] >= first}

    def spent_until(self, tenant: str, now: dt.datetime) -> tuple[dt.datetime, str] | None:
        """When the tenant's spent budget renews, and which period it is, or None while it has tokens left (a
        tenant that spent both waits for the later)."""
        budget, today = self.budgets[tenant], now.date()
        day = self.by_day.get((tenant, today), 0.0)
        month = sum(spent for (name, when), spent in self.by_day.items()
                    if name == tenant and (when.year, when.month) == (today.year, today.month))
        if budget.tokens_per_month is not None and month >= budget.tokens_per_month:
            return next_month(now), "month"
        if budget.tokens_per_day is not None and day >= budget.tokens_per_day:
            return next_day(now), "day"
        return None


class LogFollower:
    """New complete lines of the live log, across logrotate's renames (the old file is read to its end first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stream = None
        self.inode: int | None = None
        self.partial = b""

    def _open(self) -> bool:
        try:
            self.stream = self.path.open("rb")
        except FileNotFoundError:
            return False
        self.inode = os.fstat(self.stream.fileno()).st_ino
        self.partial = b""
        return True

    def _drain(self) -> list[str]:
        data = self.partial + self.stream.read()
        *complete, self.partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]

    def read_new(self) -> list[str]:
        if self.stream is None and not self._open():
            return []
        lines = self._drain()
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return lines  # rotated, the new one not created yet: next time
        if current.st_ino != self.inode:
            self.stream.close()
            if self._open():
                lines += self._drain()
        elif current.st_size < self.stream.tell():  # truncated in place
            self.stream.seek(0)
            self.partial = b""
            lines += self._drain()
        return lines


def rotated_lines(log_dir: Path, first: dt.date) -> Iterable[str]:
    """Lines of the rotated logs that may hold `first` and later, oldest first."""
    names = sorted(p.name for p in log_dir.iterdir() if p.name != LIVE_LOG and may_hold(p.name, first))
    for name in names:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(log_dir / name, "rt", encoding="utf-8", errors="replace") as stream:
            yield from stream


class Keeper:
    def __init__(self, budgets: dict[str, Budget], log: Path, marks: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.spending = Spending(budgets)
        self.follower = LogFollower(log)
        self.marks = marks
        self.clock = clock
        self.marked: dict[str, float] = {}

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock())

    def start(self) -> None:
        """Counts this month's lines so far, and clears marks of tenants without a budget any more."""
        first = self.now().date().replace(day=1)
        self.spending.add(filter(None, map(read_entry, rotated_lines(self.follower.path.parent, first))))
        for stale in self.marks.iterdir():
            if stale.name not in self.spending.budgets:
                stale.unlink()
        self.tick()

    def tick(self) -> None:
        now = self.now()
        self.spending.add(filter(None, map(read_entry, self.follower.read_new())))
        self.spending.forget_before(now.date().replace(day=1))
        for tenant in sorted(self.spending.budgets):
            self._mark(tenant, self.spending.spent_until(tenant, now))

    def _mark(self, tenant: str, spent: tuple[dt.datetime, str] | None) -> None:
        path = self.marks / tenant
        if spent is None:
            if self.marked.pop(tenant, None) is not None or path.exists():
                path.unlink(missing_ok=True)
                log(f"tenant {tenant}: budget renewed; calls accepted again")
            return
        until, period = spent
        if self.marked.get(tenant) == until.timestamp() and path.exists():
            return
        written = self.marks / f".{tenant}.new"
        written.write_text(json.dumps({"until": int(until.timestamp()), "period": period}) + "\n")
        written.chmod(0o644)  # the gateway's workers read it
        written.replace(path)
        self.marked[tenant] = until.timestamp()
        log(f"tenant {tenant}: its token budget of the {period} is spent; calls refused until {until.isoformat()}")

    def run(self, interval_s: float) -> None:
        self.start()
        while True:
            time.sleep(interval_s)
            self.tick()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def budgets_of(config: dict) -> dict[str, Budget]:
    return {name: Budget(spec.get("tokens_per_day"), spec.get("tokens_per_month"), float(spec["prompt_weight"]),
                         float(spec["completion_weight"]))
            for name, spec in config["tenants"].items()}


def main(argv: list[str] | None = None, clock: Callable[[], float] = time.time) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the keeper's JSON, written by the gateway role")
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())
    keeper = Keeper(budgets_of(config), Path(config["log"]), Path(config["marks"]), clock)
    log(f"keeping the token budgets of {len(keeper.spending.budgets)} tenants from {config['log']}")
    keeper.run(float(config["interval_s"]))


if __name__ == "__main__":
    main()
