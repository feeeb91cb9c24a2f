"""in-mh-pune, the shipped hosts-mode NVIDIA site, with one thing changed: the variants the GPU rules are tried on."""

from pathlib import Path

STACKS = Path(__file__).parents[3] / "stacks"
PUNE_REPOSITORY = """  sovereign-ai:aptRepositories:
    nvidia:
      url: http://mirror.mh.gov.example/nvidia-cuda/debian12/x86_64
      signingKey: /etc/sovkit/keys/nvidia-cuda-archive.asc
"""


def stack_variant(tmp_path: Path, site: str, *edits: tuple[str, str]) -> Path:
    """The shipped stack file of `site` with each (old, new) replaced once, written under tmp_path; an `old` it lacks
    fails."""
    text = (STACKS / f"Pulumi.{site}.yaml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / f"Pulumi.{site}.yaml"
    path.write_text(text)
    return path


def pune(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    return stack_variant(tmp_path, "in-mh-pune", *edits)
