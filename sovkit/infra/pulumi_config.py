"""The site of the running Pulumi program, read from its stack config through the same checks as
`sovkit validate`, so a mistake stops `pulumi up` with the same message before any resource is planned."""

from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config

from sovkit.config.loader import load_pulumi_config
from sovkit.config.site import SiteConfig
from sovkit.stacks import STACKS_DIR, stack_file_name


def site_from_pulumi() -> SiteConfig:
    # The engine hands config to the program in memory; Pulumi's unit-test mocks use PULUMI_CONFIG.
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret = {k for k in values if runtime_config.is_config_secret(k)}
    secret |= set(runtime_config.get_config_secret_keys_env())
    label = f"{STACKS_DIR}/{stack_file_name(pulumi.get_stack())}"
    return load_pulumi_config({k: str(v) for k, v in values.items()}, secret, label)
