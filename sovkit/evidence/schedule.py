"""`sovkit evidence schedule STACK`: the systemd service and timer that run `sovkit evidence watch STACK` on the
operator's machine (the one holding the stack, the inventory and the SSH key: hosts mode's control node).

The round needs the hosts over SSH (or podman for `local`) and writes the project's `.sovkit/<site>/` folder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

# How often a round runs: systemd's own calendar shorthands, each with its period (an alert a round fires lasts
# two periods and an hour, so one late or failed round does not resolve it).
PERIODS = {"hourly": dt.timedelta(hours=1), "daily": dt.timedelta(days=1), "weekly": dt.timedelta(weeks=1)}
RANDOM_DELAY = "15min"  # rounds of several sites scheduled alike do not start at the same second
ROUND_TIMEOUT = "2h"


def alert_lasts(every: str) -> dt.timedelta:
    return 2 * PERIODS[every] + dt.timedelta(hours=1)


def unit_name(site_name: str) -> str:
    return f"sovkit-evidence-{site_name}"


@dataclass(frozen=True)
class Schedule:
    site_name: str
    stack: str  # as the operator named it (a file or a site name), resolved in the project root
    project_root: Path
    sovkit: Path  # the sovkit executable of the operator's installation
    user: str
    every: str
    identity: Path | None = None

    def service(self) -> str:
        args = [str(self.sovkit), "evidence", "watch", self.stack,
                f"--alert-hours={int(alert_lasts(self.every).total_seconds() // 3600)}"]
        if self.identity:
            args.append(f"--identity={self.identity}")
        return "\n".join([
            "[Unit]",
            f"Description=sovkit: verify {self.site_name}, pack its evidence and alert on a regression",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"User={self.user}",
            f"WorkingDirectory={self.project_root}",
            "ExecStart=" + " ".join(_quote(a) for a in args),
            f"TimeoutStartSec={ROUND_TIMEOUT}",
            # exit 1 is a regression found and alerted: the round did its job
            "SuccessExitStatus=1",
            "Nice=10",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            # /usr, /boot and /etc read-only; the project folder, ssh's known hosts and podman's state stay writable
            "ProtectSystem=full",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "RestrictSUIDSGID=yes",
            "LockPersonality=yes",
            "",
        ])

    def timer(self) -> str:
        return "\n".join([
            "[Unit]",
            f"Description=sovkit: {self.every} evidence round of {self.site_name}",
            "",
            "[Timer]",
            f"OnCalendar={self.every}",
            f"RandomizedDelaySec={RANDOM_DELAY}",
            "Persistent=true",  # a round missed while the machine was off runs when it is back
            f"Unit={unit_name(self.site_name)}.service",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ])

    def files(self) -> dict[str, str]:
        name = unit_name(self.site_name)
        return {f"{name}.service": self.service(), f"{name}.timer": self.timer()}


def write_units(schedule: Schedule, unit_dir: Path) -> list[tuple[Path, bool]]:
    """Write the unit files into unit_dir; (path, changed) for each: a rerun with the same schedule changes none."""
    unit_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schedule.files().items():
        path = unit_dir / name
        changed = not path.is_file() or path.read_text() != text
        if changed:
            path.write_text(text)
        written.append((path, changed))
    return written


UNIT_SPECIAL = '"\\$%;\'\n'  # characters systemd reads in its own way in unit words (quotes, specifiers, variables)


def check_unit_word(what: str, value: str) -> None:
    """A path or stack name written into a unit: refused when systemd would read it otherwise than as written."""
    bad = sorted({c for c in value if c in UNIT_SPECIAL})
    if bad:
        raise ValueError(f"{what} {value!r} holds {' '.join(repr(c) for c in bad)}, which systemd reads in its own "
                         "way in a unit file; use a path without them")


def _quote(arg: str) -> str:
    """An ExecStart word: quoted when it holds a space (check_unit_word refused what else is odd)."""
    return f'"{arg}"' if " " in arg else arg
