"""Sites for the serving tests: the shipped stacks, and small variants of them built in memory."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import yaml

from sovkit.config import PROJECT, SiteConfig, load_stack
from sovkit.config.loader import build_site
from sovkit.stacks import project_root, stack_files

ROOT = project_root()


@pytest.fixture(scope="session")
def stacks() -> dict[str, SiteConfig]:
    return {site.name: site for site in (load_stack(p) for p in stack_files(ROOT))}


@pytest.fixture(scope="session")
def variant() -> Callable[..., SiteConfig]:
    """A shipped stack with some keys replaced (key names without the project prefix)."""

    def make(base: str, **changes: object) -> SiteConfig:
        text = (ROOT / "stacks" / f"Pulumi.{base}.yaml").read_text(encoding="utf-8")
        config = copy.deepcopy(yaml.safe_load(text)["config"])
        for key, value in changes.items():
            config[f"{PROJECT}:{key}"] = value
        models = config[f"{PROJECT}:models"]
        store = config[f"{PROJECT}:modelStore"].rstrip("/")
        for name, model in models.items():  # the test builders' placeholder source, inside this site's store
            if isinstance(model, dict) and model.get("source") == "/srv/sovkit/models/m":
                model["source"] = f"{store}/{name}"
        config[f"{PROJECT}:tenants"] = {"tenant": {"models": list(models), "rateLimit": {"requestsPerMinute": 1},
                                              "apiKey": {"file": "/etc/sovkit/keys/t.key"}}}
        return build_site(config, f"variant of {base}", None, fit=False)  # the planner tests show what does not fit

    return make
