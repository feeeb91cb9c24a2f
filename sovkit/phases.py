"""Long work in named phases: progress as each starts and ends, and the seconds each took, for the summary."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Progress = Callable[[str], None]


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def timed(self, name: str, progress: Progress) -> Iterator[None]:
        progress(f"[{name}] ...")
        started = time.monotonic()
        yield
        self.seconds[name] = round(time.monotonic() - started, 1)
        progress(f"[{name}] done in {self.seconds[name]:.1f} s")

    def summary(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())
