"""The kubernetes weights verifier image: the recipe the kit ships and the site builds into its own registry.

The chart's `verify-model` init container runs this image on a signed model's folder before vLLM starts. The image
is sovkit/models/verify_weights.py (the very file the hosts run, copied in at build time: one verifier) over the
model-signing library, installed from hash-pinned wheels on a base pinned by digest:

    sovkit/data/images/model-verifier/Containerfile     the recipe
    sovkit/data/images/model-verifier/requirements.txt  the lock (scripts/lock-runtime.py model-verifier)

`write_context` assembles a build context from those three files and the lock's wheels; `sovkit bundle` writes one
for a kubernetes site with a signed model. The image's tag is the model-signing version and a digest of the three
files, so the chart's pinned tag (values.yaml images.verifier.tag) changes whenever what the image verifies with does
(tests/unit/models/test_verifier_image.py holds them together).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "data" / "images" / "model-verifier"
CONTAINERFILE = RECIPE / "Containerfile"
LOCK = RECIPE / "requirements.txt"
VERIFIER = Path(__file__).resolve().with_name("verify_weights.py")
PIP = "pip==25.3"  # installs the wheels inside the build, run from its own wheel (the base needs no pip)
REPOSITORY = "sovkit/model-verifier"  # under the site's registry, as the chart pulls it (imageRegistry/REPOSITORY:tag)
ENTRYPOINT_FILES = ("Containerfile", "requirements.txt", "verify_weights.py")


def _sources() -> dict[str, Path]:
    return dict(zip(ENTRYPOINT_FILES, (CONTAINERFILE, LOCK, VERIFIER), strict=True))


def pins() -> dict[str, str]:
    """Package -> version the lock pins."""
    lines = [line.split()[0] for line in LOCK.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    return dict(line.split("==", 1) for line in lines)


def recipe_digest() -> str:
    """sha256 over the recipe's three files (names and bytes), shortened to 12 hex digits."""
    digest = hashlib.sha256()
    for name, path in _sources().items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def image_tag() -> str:
    """The tag the site builds and the chart pulls: <model-signing version>-<recipe digest>."""
    return f"{pins()['model-signing']}-{recipe_digest()}"


def write_context(dest: Path, wheels: Iterable[Path]) -> Path:
    """A build context in dest (replaced): the recipe's three files and wheels/ holding the given wheel files."""
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "wheels").mkdir(parents=True)
    for name, path in _sources().items():
        shutil.copyfile(path, dest / name)
    for wheel in wheels:
        shutil.copyfile(wheel, dest / "wheels" / wheel.name)
    return dest
