"""Pulumi.yaml declares the config keys from the schema, and cannot drift from it."""

from pathlib import Path

import yaml

from sovkit.config.loader import key_index
from sovkit.config.pulumi_project import declarations, render_project_file

PROJECT_FILE = Path(__file__).parents[3] / "Pulumi.yaml"


def test_pulumi_yaml_is_generated_from_the_schema():
    assert PROJECT_FILE.read_text() == render_project_file(), (
        "Pulumi.yaml is stale: python -m sovkit.config.pulumi_project > Pulumi.yaml")


def test_project_settings():
    project = yaml.safe_load(PROJECT_FILE.read_text())
    assert project["name"] == "sovereign-ai"
    assert project["runtime"]["name"] == "python"
    assert project["main"] == "stacks/" and project["stackConfigDir"] == "stacks/"


def test_every_key_is_declared_or_listed_and_declared_types_are_pulumi_types():
    declared, undeclared = declarations()
    assert set(declared) | set(undeclared) == set(key_index())
    assert not set(declared) & set(undeclared)
    for key, declaration in declared.items():
        assert declaration["type"] in {"string", "integer", "boolean", "array"}, key
        assert declaration["description"], key
    assert declared["country"]["type"] == "string"
    assert declared["monitoringRetentionDays"] == {"type": "integer", "default": 30,
                                                   "description": "Days Prometheus keeps metrics"}
    assert declared["inCountryCidrs"] == {"type": "array", "items": {"type": "string"},
                                          "description": "Networks in the country egress may reach"}
    assert declared["encryptionAtRestRequired"]["default"] is True
    assert "models" in undeclared and "hosts" in undeclared and "logRetentionDays" in undeclared
