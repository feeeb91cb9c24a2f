"""Running host commands with readable failures."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("sovkit.hosts")


class HostsError(RuntimeError):
    """A test-host operation failed; the message names the command and what it printed."""


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capture its output and raise HostsError (with stderr) if check and it fails."""
    log.debug("run: %s", " ".join(argv))
    proc = subprocess.run(
        list(argv), env=dict(env) if env is not None else None, input=input_text,
        capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise HostsError(
            f"`{' '.join(argv)}` exited {proc.returncode}\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc
