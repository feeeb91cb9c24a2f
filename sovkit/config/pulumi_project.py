"""Pulumi.yaml, generated from the schema so the declared config keys can never drift from it.

Pulumi's project config declares only string, integer, boolean and array types, and treats a declared key
without a default as required. So keys every stack must set, and optional keys that have a default, are
declared with their type; structured keys (maps such as models) and optional keys without a default are
listed in a comment, and `sovkit validate` checks them all. Regenerate with:
`python -m sovkit.config.pulumi_project > Pulumi.yaml` (a test fails when the file is stale).
"""

from __future__ import annotations

import types
import typing

import yaml
from pydantic.fields import FieldInfo

from sovkit.config.schema import PROJECT, SECTIONS

HEADER = """\
# Generated from sovkit/config/schema.py by `python -m sovkit.config.pulumi_project > Pulumi.yaml`.
name: {project}
description: Sovereign AI cloud for one site, described by one stack file (stacks/Pulumi.<site>.yaml).
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: .venv
main: stacks/
stackConfigDir: stacks/
"""
SCALARS: dict[type, str] = {str: "string", int: "integer", bool: "boolean"}


def pulumi_type(annotation: object) -> dict | None:
    """Pulumi's declaration of a field's type, or None where Pulumi has no type for it (maps, unions)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return pulumi_type(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        kinds = {type(a) for a in typing.get_args(annotation)}
        return {"type": SCALARS[kinds.pop()]} if len(kinds) == 1 else None
    if origin is list:
        item = pulumi_type(typing.get_args(annotation)[0])
        return {"type": "array", "items": item} if item and item["type"] != "array" else None
    if isinstance(annotation, type) and annotation in SCALARS:
        return {"type": SCALARS[annotation]}
    return None


def _optional(annotation: object) -> object | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else None
    return annotation


def declarations() -> tuple[dict[str, dict], dict[str, str]]:
    """(declared keys -> declaration, undeclared keys -> why and what they are)."""
    declared: dict[str, dict] = {}
    undeclared: dict[str, str] = {}
    for model in SECTIONS.values():
        for name, field in model.model_fields.items():
            alias = field.alias or name
            described = field.description or name
            kind = pulumi_type(_optional(field.annotation))
            if kind is None:
                undeclared[alias] = f"structured: {described}"
                continue
            default = _default(field)
            if not field.is_required() and default is None:
                undeclared[alias] = f"optional: {described}"
                continue
            declared[alias] = {**kind, "description": described}
            if default is not None:
                declared[alias]["default"] = default
    return declared, undeclared


def _default(field: FieldInfo) -> object:
    if field.is_required():
        return None
    return field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]


class _IndentedLists(yaml.SafeDumper):
    """Lists indented under their key, as the project's yamllint configuration wants them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render_project_file() -> str:
    declared, undeclared = declarations()
    comment = ["# Also read from the stack file, validated by `sovkit validate`, not declared here because Pulumi",
               "# cannot type a map or declare an optional key without a default:"]
    comment += [f"#   {PROJECT}:{key} ({why})" for key, why in undeclared.items()]
    body = yaml.dump({"config": declared}, Dumper=_IndentedLists, sort_keys=False, width=110, allow_unicode=True)
    return HEADER.format(project=PROJECT) + "\n".join(comment) + "\n" + body


if __name__ == "__main__":
    print(render_project_file(), end="")
