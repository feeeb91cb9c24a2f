"""values.yaml, its annotations and values.schema.json describe the same keys (no drift between them)."""

from __future__ import annotations

import json
import re

import yaml

from sovkit.serving import CHART_DIR


def leaves(data: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in {"models", "labels"} and not key.endswith("Selector"):
            out |= leaves(value, path + ".")
        else:
            out.add(path)
    return out


def schema_paths(node: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        out.add(path)
        out |= schema_paths(sub, path + ".")
    return out


def test_every_value_is_annotated_and_typed():
    text = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    annotated = set(re.findall(r"^\s*## @param (\S+)", text, re.MULTILINE))
    values = leaves(yaml.safe_load(text))
    documented = {v for v in values if v in annotated or any(v.startswith(a + ".") for a in annotated)}
    assert values == documented, f"values without a ## @param line: {sorted(values - documented)}"
    schema = schema_paths(json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8")))
    assert annotated <= schema, f"annotated but not in values.schema.json: {sorted(annotated - schema)}"
