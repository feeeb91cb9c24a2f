"""Where stack files are: `stacks/Pulumi.<site>.yaml` under the project root (the folder with Pulumi.yaml)."""

from __future__ import annotations

from pathlib import Path

STACKS_DIR = "stacks"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working folder) holding Pulumi.yaml,
    else the checkout sovkit itself was installed from."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[1]


def stack_files(root: Path | None = None) -> list[Path]:
    folder = (root or project_root()) / STACKS_DIR
    return sorted(folder.glob("Pulumi.*.yaml"))


def stack_name(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


def find_stack(stack: str) -> Path:
    """A stack by path, or by site name (`local` -> stacks/Pulumi.local.yaml)."""
    path = Path(stack)
    if path.is_file():
        return path
    candidate = project_root() / STACKS_DIR / f"Pulumi.{stack}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(stack_name(p) for p in stack_files()) or "none"
    raise FileNotFoundError(f"no stack {stack!r}: neither a file nor {candidate} (stacks here: {known})")
