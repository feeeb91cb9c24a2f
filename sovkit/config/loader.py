"""Read a stack file (or the Pulumi program's config) into a SiteConfig, or fail with every problem at once.

Both `sovkit validate` and the Pulumi program go through `build_site`, so a mistake gives the same message
wherever it is found, before anything is touched.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from sovkit.config import rules
from sovkit.config.profiles import load_profile, profile_ids
from sovkit.config.schema import PROJECT, SECTIONS
from sovkit.config.site import SiteConfig
from sovkit.errors import Problem, StackError, short

STACK_FILE_KEYS = ("config", "encryptionsalt", "secretsprovider", "environment")
TODO_MARKER = "TODO"
FROM_STACK, FROM_DEFAULT = "stack file", "sovkit default"
# pydantic's wording for common type errors, in words an operator reads.
PLAIN_WORDS = {
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "list_type": "a list: [a, b] or one '- item' line each",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "text",
}


def key_index() -> dict[str, tuple[str, str]]:
    """Pulumi config key (camelCase) -> (section, field name)."""
    return {f.alias or name: (section, name) for section, model in SECTIONS.items()
            for name, f in model.model_fields.items()}


def load_stack(path: str | Path, *, fit: bool = True) -> SiteConfig:
    """Validate a stack file; raise StackError naming every problem. `fit=False` leaves out the planner's verdict
    (`sovkit plan` shows what does not fit and what would)."""
    path = Path(path)
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StackError(label, [Problem("(file)", err.strerror or str(err), "a readable stack file")]) from None
    empty = Problem("(file)", "an empty file", "a Pulumi stack file with a config: map",
                    fix="start from `sovkit new-site` or stacks/Pulumi.local.yaml")
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        raise StackError(label, [Problem("(yaml)", f"{err.problem or err.context}", "valid YAML", line=line,
                                         fix="check indentation, quotes and that each key appears once")]) from None
    except YAMLError as err:
        raise StackError(label, [Problem("(yaml)", str(err).splitlines()[0], "valid YAML")]) from None
    if document is None:  # nothing but blanks and comments
        raise StackError(label, [empty])
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise StackError(label, [Problem("config", short(type(document).__name__), "a map under the top-level "
                                         "key config: with sovereign-ai:<key> entries", line=1)])
    problems = [Problem(k, "an unknown top-level key", "one of " + ", ".join(STACK_FILE_KEYS),
                        line=_line(document, [k])) for k in document if k not in STACK_FILE_KEYS]
    try:
        site = build_site(_plain(document["config"]), label, lines=document["config"], fit=fit)
    except StackError as err:
        err.problems[:0] = problems
        raise
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if path.name.startswith("Pulumi.") and stack != site.name:
        problems.append(Problem(f"{PROJECT}:siteName", short(site.name), f"{stack!r}, the stack this file is for",
                                fix=f"rename the file to Pulumi.{site.name}.yaml or set siteName: {stack}",
                                line=_line(document["config"], [f"{PROJECT}:siteName"])))
    if problems:
        raise StackError(label, problems)
    return site


def load_pulumi_config(values: dict[str, str], secret_keys: set[str], label: str) -> SiteConfig:
    """The Pulumi program's config (every value a string; objects as JSON) through the same checks."""
    config: dict[str, object] = {}
    for name, raw in values.items():
        value: object = raw
        if raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
        config[name] = {"secure": "(secret)"} if name in secret_keys else value
    return build_site(config, label, lines=None)


def build_site(config: dict[str, object], label: str, lines: dict | None, *, fit: bool = True) -> SiteConfig:
    index = key_index()
    sections: dict[str, dict[str, object]] = {name: {} for name in SECTIONS}
    problems: list[Problem] = []
    secret_refs = _secret_refs(config)
    plain_secrets: set[str] = set()  # referenced as secrets but written in the clear: reported by the rules
    for full_key, value in config.items():
        namespace, _, name = full_key.partition(":")
        where = _line(lines, [full_key])
        if not name:
            problems.append(Problem(full_key, "a key with no namespace", f"{PROJECT}:{full_key}", line=where))
            continue
        if namespace != PROJECT:
            continue  # provider settings (openstack:*, kubernetes:*) belong to those providers
        if isinstance(value, dict) and set(value) == {"secure"}:
            continue  # an encrypted value (an API key); the program reads it with require_secret
        if name in secret_refs:
            plain_secrets.add(full_key)
            continue
        if name not in index:
            close = difflib.get_close_matches(name, index, n=1)
            problems.append(Problem(full_key, "an unknown key", f"{PROJECT}:<key> with a key sovkit knows",
                                    fix=f"did you mean {PROJECT}:{close[0]}?" if close else
                                    "run `sovkit show STACK` or read Pulumi.yaml for the keys", line=where))
            continue
        section, _field = index[name]
        sections[section][name] = value
    todos = _todo_markers(config, lines)
    problems += todos
    validated = {}
    for section, data in sections.items():
        try:
            validated[section] = SECTIONS[section].model_validate(data)
        except ValidationError as err:
            # A TODO marker is reported once, as a TODO, not again as a value of the wrong form.
            problems += [p for p in _pydantic_problems(err, SECTIONS[section], data, lines)
                         if not any(p.key_path.startswith(t.key_path) for t in todos)]
    if problems:
        raise StackError(label, problems)
    site_section = validated["site"]
    try:
        profile = load_profile(site_section.profile)
    except KeyError:
        raise StackError(label, [Problem(f"{PROJECT}:profile", short(site_section.profile),
                                         "a sovkit country profile: " + ", ".join(profile_ids()),
                                         fix="add one under sovkit/data/profiles/ (see README: adding a country)",
                                         line=_line(lines, [f"{PROJECT}:profile"]))]) from None
    if profile.country != site_section.country:
        raise StackError(label, [Problem(f"{PROJECT}:profile", short(profile.id),
                                         f"a profile for country {site_section.country}; {profile.id} is for "
                                         f"{profile.country}", line=_line(lines, [f"{PROJECT}:profile"]))])
    provenance = {f"{PROJECT}:{name}": FROM_STACK if name in config_names(config) else FROM_DEFAULT
                  for name in index}
    residency = validated["residency"]
    if residency.log_retention_days is None:
        default = profile.defaults.log_retention_days
        residency = residency.model_copy(update={"log_retention_days": default.value})
        provenance[f"{PROJECT}:logRetentionDays"] = f"country profile {profile.id} ({default.set_by}: " + (
            profile.citation(default.clause) if default.clause else "the law leaves it to the operator") + ")"
    site = SiteConfig(source=label, profile=profile, provenance=provenance,
                      **{**validated, "residency": residency})  # type: ignore[arg-type]
    problems = [_with_line(p, lines) for p in rules.check(site, frozenset(plain_secrets), fit=fit)]
    if problems:
        raise StackError(label, problems)
    return site


def _secret_refs(config: dict[str, object]) -> set[str]:
    """Config keys that tenants name as holding their API key."""
    tenants = config.get(f"{PROJECT}:tenants")
    if not isinstance(tenants, dict):
        return set()
    refs = (t["apiKey"].get("pulumiSecret") for t in tenants.values()
            if isinstance(t, dict) and isinstance(t.get("apiKey"), dict))
    return {r for r in refs if isinstance(r, str)}


def config_names(config: dict[str, object]) -> set[str]:
    return {k.partition(":")[2] for k in config if k.startswith(PROJECT + ":")}


def _todo_markers(config: object, lines: dict | None, path: tuple = ()) -> list[Problem]:
    found: list[Problem] = []
    if isinstance(config, dict):
        for k, v in config.items():
            found += _todo_markers(v, lines, (*path, k))
    elif isinstance(config, list):
        for i, v in enumerate(config):
            found += _todo_markers(v, lines, (*path, i))
    elif isinstance(config, str) and TODO_MARKER in config:
        found.append(Problem(_format_path(path), short(config), "a real value in place of the TODO marker",
                             fix="fill in what the marker asks for", line=_line(lines, list(path))))
    return found


def _pydantic_problems(err: ValidationError, model: type[BaseModel], data: dict, lines: dict | None) -> list[Problem]:
    merged: dict[tuple, Problem] = {}
    for e in err.errors():
        loc = _real_loc(data, e["loc"])
        found, present = _value_at(data, loc)
        kind = e["type"]
        message = e["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
        if kind == "missing":
            found_text, allowed = "nothing (the key is missing)", "this key is required"
            loc = tuple(e["loc"])
        elif kind == "extra_forbidden":
            known = _keys_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            found_text, allowed = f"an unknown key {loc[-1]!r}", "one of " + ", ".join(known)
            message = f"did you mean {close[0]!r}?" if close else ""
            merged[loc] = Problem(_format_path(_full(loc)), found_text, allowed, fix=message,
                                  line=_line(lines, list(_full(loc))))
            continue
        else:
            found_text = short(found) if present else "nothing"
            allowed = PLAIN_WORDS.get(kind, message)
            if kind in ("model_type", "dict_type"):
                keys = _keys_at(model, loc)
                allowed = f"a map of {', '.join(keys)}" if keys else "a map (key: value lines)"
            if loc and loc[-1] == "apiKey":
                message = "API keys are secrets, never in the file: give pulumiSecret or file"
                merged[loc] = Problem(_format_path(_full(loc)), found_text, allowed, fix=message,
                                      line=_line(lines, list(_full(loc))))
                continue
        if loc in merged:
            previous = merged[loc]
            if allowed not in previous.allowed:
                merged[loc] = Problem(previous.key_path, previous.found, f"{previous.allowed}; or {allowed}",
                                      line=previous.line)
            continue
        merged[loc] = Problem(_format_path(_full(loc)), found_text, allowed, line=_line(lines, list(_full(loc))))
    return list(merged.values())


def _full(loc: tuple) -> tuple:
    return (f"{PROJECT}:{loc[0]}", *loc[1:]) if loc else ()


def _real_loc(data: object, loc: tuple) -> tuple:
    """The part of a pydantic error location that exists in the input, plus a missing key's name.

    Union member tags that pydantic appends (such as 'int' or "literal['auto']") are dropped."""
    real: list = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
            real.append(part)
            continue
        if isinstance(node, dict) and _looks_like_key(part):
            real.append(part)
        break
    return tuple(real)


def _looks_like_key(part: object) -> bool:
    return isinstance(part, str) and not any(c in part for c in "[]'()")


def _value_at(data: object, loc: tuple) -> tuple[object, bool]:
    node = data
    for part in loc:
        try:
            node = node[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None, False
    return node, True


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed at a location of the schema."""
    annotation: object = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or n: f for n, f in annotation.model_fields.items()}
            annotation = fields[part].annotation if part in fields else None
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: object) -> object:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
        return (models or members)[0]
    return annotation


def _format_path(path: tuple | list) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _with_line(problem: Problem, lines: dict | None) -> Problem:
    if lines is None or problem.line:
        return problem
    parts: list = []
    head, _, rest = problem.key_path.partition(".")
    base, bracket, index = head.partition("[")
    parts.append(base)
    if bracket:
        parts.append(int(index.rstrip("]")))
    for piece in rest.split(".") if rest else []:
        name, bracket, index = piece.partition("[")
        parts.append(name)
        if bracket:
            parts.append(int(index.rstrip("]")))
    return Problem(problem.key_path, problem.found, problem.allowed, problem.fix, _line(lines, parts))


def _line(lines: object, path: list) -> int | None:
    """1-based line of the deepest part of `path` found in a ruamel round-trip document."""
    node, line = lines, None
    for part in path:
        lc = getattr(node, "lc", None)
        try:
            position = lc.key(part) if isinstance(node, dict) else lc.item(part)  # type: ignore[union-attr]
            line = position[0] + 1
            node = node[part]  # type: ignore[index]
        except (AttributeError, KeyError, IndexError, TypeError):
            break
    return line


def _plain(node: object) -> object:
    """ruamel's round-trip containers and scalars as plain Python values."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node
