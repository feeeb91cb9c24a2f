"""Where stack files are: `stacks/Pulumi.<site>.yaml` under the project root (the folder with Pulumi.yaml)."""

from __future__ import annotations

from pathlib import Path

STACKS_DIR = "stacks"
PREFIX, SUFFIX = "Pulumi.", ".yaml"  # Pulumi's own naming of stack files (stackConfigDir: stacks)


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working folder) holding Pulumi.yaml,
    else the checkout sovkit itself was installed from."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[1]


def stack_file_name(site_name: str) -> str:
    return f"{PREFIX}{site_name}{SUFFIX}"


def stack_path(site_name: str, root: Path | None = None) -> Path:
    """Where the stack file of `site_name` lives in the project at `root`."""
    return (root or project_root()) / STACKS_DIR / stack_file_name(site_name)


def stack_files(root: Path | None = None) -> list[Path]:
    folder = (root or project_root()) / STACKS_DIR
    return sorted(folder.glob(f"{PREFIX}*{SUFFIX}"))


def stack_name(path: Path) -> str:
    return path.name.removeprefix(PREFIX).removesuffix(SUFFIX)


def find_stack(stack: str) -> Path:
    """A stack by path, or by site name (`local` -> stacks/Pulumi.local.yaml)."""
    path = Path(stack)
    if path.is_file():
        return path
    candidate = stack_path(stack)
    if candidate.is_file():
        return candidate
    known = ", ".join(stack_name(p) for p in stack_files()) or "none"
    raise FileNotFoundError(f"no stack {stack!r}: neither a file nor {candidate} (stacks here: {known})")
