"""The real tiny model (sovkit.serving.tinymodel), made once and copied for each test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from sovkit.serving import tinymodel


@pytest.fixture(scope="session")
def tiny_model_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "tiny-chat"
    tinymodel.build(folder)
    (folder / tinymodel.SIGNATURE).unlink()  # the folder as a model team has it before signing
    return folder


@pytest.fixture
def tiny_model(tiny_model_source: Path, tmp_path: Path) -> Callable[[str], Path]:
    """A fresh copy of the real tiny model (sovkit.serving.tinymodel), by folder name."""

    def copy(name: str = "tiny-chat") -> Path:
        return Path(shutil.copytree(tiny_model_source, tmp_path / name))

    return copy
