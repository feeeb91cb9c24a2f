"""Errors a tired operator can act on: the file, the key path, what was found, what is allowed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One mistake in a stack file."""

    key_path: str  # e.g. "sovereign-ai:models.qwen7b.tensorParallel", as `pulumi config get --path` spells it
    found: str  # the value found, rendered short
    allowed: str  # what is allowed instead
    fix: str = ""  # how to fix it, when there is more to say than "allowed"
    line: int | None = None  # 1-based line in the file, when known

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        lines = [f"{where}: {self.key_path}", f"  found:   {self.found}", f"  allowed: {self.allowed}"]
        if self.fix:
            lines.append(f"  fix:     {self.fix}")
        return "\n".join(lines)


@dataclass
class StackError(Exception):
    """A stack file that cannot be used; nothing has been touched."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{self.file}: {count} problem{'s' if count != 1 else ''}; nothing was changed"
        return "\n".join([head, *(p.render(self.file) for p in self.problems)])


def short(value: object, limit: int = 80) -> str:
    """Render a found value briefly and unambiguously (strings quoted, long values cut)."""
    text = repr(value) if isinstance(value, str) else str(value)
    if value is None:
        text = "nothing (the key is missing or empty)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
