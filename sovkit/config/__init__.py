"""The stack file: schema, loading and the validated SiteConfig every renderer derives from."""

from sovkit.config.loader import load_pulumi_config, load_stack
from sovkit.config.schema import PROJECT
from sovkit.config.site import Node, SiteConfig

__all__ = ["PROJECT", "Node", "SiteConfig", "load_pulumi_config", "load_stack"]
