"""Read a stack file (or the Pulumi program's config) into a SiteConfig, or fail with every problem at once.

Both `sovkit validate` and the Pulumi program go through `build_site`, so a mistake gives the same message
wherever it is found, before anything is touched.
"""

from __future__ import annotations

import codecs
import difflib
import json
import types
import typing
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from sovkit.config import rules
from sovkit.config.profiles import load_profile, profile_ids
from sovkit.config.schema import PROJECT, SECTIONS
from sovkit.config.site import SiteConfig
from sovkit.errors import Problem, StackError, short
from sovkit.stacks import PREFIX as STACK_PREFIX
from sovkit.stacks import stack_file_name, stack_name

STACK_FILE_KEYS = ("config", "encryptionsalt", "secretsprovider", "environment")
# Config namespaces besides sovkit's own that the Pulumi program reads (its providers, and Pulumi's own settings).
# Any other namespace is a misspelling: Pulumi would hand the key to nobody and the setting would silently not apply.
PROVIDER_NAMESPACES = ("openstack", "kubernetes", "command", "random", "pulumi")
# Bounds on what a stack file may hold, far above any real site and low enough that a runaway or hostile file is
# refused at once, in bounded time and memory:
# - the shipped stacks are 3-6 KiB and an on-prem site of 200 hosts, one line each, about 25 KiB: 1 MiB is read,
#   nothing larger;
MAX_STACK_FILE_BYTES = 1024 * 1024
# - the longest real value is a URL or a written justification (well under 1 KiB; URLs stay under 2 KiB to work
#   everywhere): 4 KiB per scalar;
MAX_VALUE_CHARS = 4096
# - the longest real list is a country's in-country networks, a few hundred prefixes once aggregated; beyond a few
#   thousand, the nftables sets and NetworkPolicies they become stop being reviewable: 4096 entries per list or map;
MAX_ENTRIES = 4096
# - a stack nests five levels at most (config > tenants > name > apiKey > file); 16 leaves room and keeps every
#   recursive reader (the YAML composer, the schema) far from Python's recursion limit.
MAX_DEPTH = 16
NO_ALIASES = ("every value written out where it is used: sovkit reads no YAML anchors (&name), aliases (*name) or "
              "merge keys (<<)")
ALIAS_FIX = ("write the value in full at each place; an auditor reads a stack file line by line, and aliases can "
             "make a small file expand into gigabytes")
# Invisible characters that are letters to Unicode (Hangul fillers), besides the format and control categories.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cs", "Zl", "Zp"})
JOINERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ: part of the spelling in Indic scripts, after a virama
# Scripts whose letters look like Latin ones: a word mixing them with Latin letters is a look-alike (homoglyph).
LOOKALIKE_SCRIPTS = frozenset({"CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE"})
# Look-alikes of ASCII letters, digits and signs: fullwidth forms and mathematical alphanumerics.
LOOKALIKE_RANGES = ((0xFF01, 0xFF5E), (0x1D400, 0x1D7FF))
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
    document = _read_document(path, label)
    empty = Problem("(file)", "an empty file", "a Pulumi stack file with a config: map",
                    fix="start from `sovkit new-site` or stacks/Pulumi.local.yaml")
    if document is None:  # nothing but blanks and comments
        raise StackError(label, [empty])
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        where = document if isinstance(document, dict) and "config" in document else None
        found = _kind(where["config"]) if where is not None else (
            "a map without a config: key" if isinstance(document, dict) else _kind(document))
        raise StackError(label, [Problem("config", found, "a map under the top-level key config: with "
                                         "sovereign-ai:<key> entries",
                                         line=(_line(document, ["config"]) if where is not None else None) or 1)])
    problems = [Problem(k, "an unknown top-level key", "one of " + ", ".join(STACK_FILE_KEYS),
                        line=_line(document, [k])) for k in document if k not in STACK_FILE_KEYS]
    try:
        site = build_site(_plain(document["config"]), label, lines=document["config"], fit=fit)
    except StackError as err:
        err.problems[:0] = problems
        raise
    stack = stack_name(path)
    if path.name.startswith(STACK_PREFIX) and stack != site.name:
        problems.append(Problem(f"{PROJECT}:siteName", short(site.name), f"{stack!r}, the stack this file is for",
                                fix=f"rename the file to {stack_file_name(site.name)} or set siteName: {stack}",
                                line=_line(document["config"], [f"{PROJECT}:siteName"])))
    if problems:
        raise StackError(label, problems)
    return site


def _read_document(path: Path, label: str) -> object:
    """The YAML document of a stack file, or StackError: too large, not UTF-8, not YAML, or using anchors and
    aliases. Each is found before the document is built, so a hostile file costs bounded time and memory."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_STACK_FILE_BYTES + 1)
    except OSError as err:
        raise StackError(label, [Problem("(file)", err.strerror or str(err), "a readable stack file")]) from None
    if len(data) > MAX_STACK_FILE_BYTES:
        try:
            size = f"{path.stat().st_size:,} bytes"
        except OSError:
            size = "more than that"
        raise StackError(label, [Problem("(file)", f"a file of {size}", f"a stack file of at most "
                                         f"{MAX_STACK_FILE_BYTES:,} bytes (1 MiB)",
                                         fix="a stack file describes one site in a few kilobytes: check that this is "
                                             "the stack file; it was not read")])
    text = _decode(data, label)
    try:
        problem = _scan_events(text)
        if problem is not None:
            raise StackError(label, [problem])
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        raise StackError(label, [Problem("(yaml)", f"{err.problem or err.context}", "valid YAML", line=line,
                                         fix="check indentation, quotes and that each key appears once")]) from None
    except YAMLError as err:
        raise StackError(label, [Problem("(yaml)", str(err).splitlines()[0], "valid YAML")]) from None


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        bad = " ".join(f"0x{b:02x}" for b in data[err.start:err.end])
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        raise StackError(label, [Problem(
            "(file)", f"{bad} at byte offset {err.start} (line {line}, column {column}), which is not UTF-8",
            "a text file in UTF-8", line=line,
            fix="the file is UTF-16: save it as UTF-8" if utf16 else
            "save the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8 FILE), then check the named line")]) from None


@dataclass
class _Frame:
    """Where the event scan is inside one mapping or sequence."""

    path: tuple
    mapping: bool
    expect_key: bool = True
    key: object = None
    index: int = 0


def _scan_events(text: str) -> Problem | None:
    """The first anchor, alias or merge key, or a nesting deeper than MAX_DEPTH, found in the YAML event stream
    before any document is composed: an alias is never expanded (a "billion laughs" file stops at its first one)."""
    frames: list[_Frame] = []
    anchor: tuple[str, int, tuple] | None = None  # the first anchor: name, line, path
    merge: tuple[int, tuple] | None = None
    anchors: dict[str, int] = {}
    for event in YAML(typ="base").parse(text):  # the plain parser: events only, no comments kept
        if isinstance(event, MappingEndEvent | SequenceEndEvent):
            frames.pop()
            _node_done(frames)
            continue
        if not isinstance(event, ScalarEvent | AliasEvent | MappingStartEvent | SequenceStartEvent):
            continue
        line = event.start_mark.line + 1
        top = frames[-1] if frames else None
        is_key = bool(top and top.mapping and top.expect_key)
        path = () if top is None else (*top.path, "?" if is_key else (top.key if top.mapping else top.index))
        if isinstance(event, AliasEvent):
            where = (f" (its anchor &{event.anchor} is on line {anchors[event.anchor]})"
                     if event.anchor in anchors else "")
            return Problem(_event_path(path), f"an alias *{event.anchor}{where}", NO_ALIASES, fix=ALIAS_FIX,
                           line=line)
        if event.anchor is not None:
            anchors.setdefault(event.anchor, line)
            anchor = anchor or (event.anchor, line, path)
        if isinstance(event, ScalarEvent):
            if is_key and ((event.value == "<<" and event.style is None) or str(event.tag).endswith(":merge")):
                merge = merge or (line, path[:-1])
            _node_done(frames, event.value)
            continue
        if len(frames) >= MAX_DEPTH:
            return Problem(_event_path(path), f"values nested more than {MAX_DEPTH} levels deep",
                           f"at most {MAX_DEPTH} levels (a stack file nests five)", line=line)
        frames.append(_Frame(path, isinstance(event, MappingStartEvent)))
    if merge is not None:
        return Problem(_event_path(merge[1]), "a merge key <<", NO_ALIASES, fix=ALIAS_FIX, line=merge[0])
    if anchor is not None:
        return Problem(_event_path(anchor[2]), f"an anchor &{anchor[0]}", NO_ALIASES, fix=ALIAS_FIX, line=anchor[1])
    return None


def _node_done(frames: list[_Frame], scalar: object = None) -> None:
    """A node ended: in a mapping, a key (then its value is next) or a value (then a key); in a list, one item."""
    if not frames:
        return
    top = frames[-1]
    if top.mapping:
        if top.expect_key:
            top.key = scalar if scalar is not None else "?"
        top.expect_key = not top.expect_key
    else:
        top.index += 1


def _event_path(path: tuple) -> str:
    """A path of the event scan as the config key path it is ("(yaml)" outside config:)."""
    if len(path) > 1 and path[0] == "config":
        return _format_path(path[1:])
    return _format_path(path) or "(yaml)"


def _kind(value: object) -> str:
    """What a value is, in an operator's words (never a Python class name)."""
    if isinstance(value, dict):
        return f"a map of {len(value)} key{'s' if len(value) != 1 else ''}" if value else "an empty map"
    if isinstance(value, list):
        return f"a list of {len(value)} entr{'ies' if len(value) != 1 else 'y'}" if value else "an empty list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"true or false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a text ({short(value)})"
    return "a value of another kind"


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
    secret_refs = secret_keys_named(config)
    plain_secrets: set[str] = set()  # referenced as secrets but written in the clear: reported by the rules
    # Keys and values that are too large or hold look-alike or invisible characters; the keys they shadow (a key
    # written with a Cyrillic letter, or in a misspelt namespace) are not reported missing as well.
    content, shadows = _content_problems(config, lines, secret_refs)
    for full_key, value in config.items():
        namespace, _, name = full_key.partition(":")
        where = _line(lines, [full_key])
        if not _key_is_plain(full_key):
            continue  # reported with the character that is not plain ASCII
        if not name:
            problems.append(Problem(full_key, "a key with no namespace", f"{PROJECT}:{full_key}", line=where))
            continue
        if namespace != PROJECT:
            # Provider settings (openstack:*, kubernetes:*) belong to those providers; any other namespace is a
            # misspelling that would drop the setting without a word.
            if namespace not in PROVIDER_NAMESPACES:
                problems.append(_namespace_problem(full_key, where))
                shadows.add(f"{PROJECT}:{name}")
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            continue  # an encrypted value (an API key); the program reads it with require_secret
        if name in secret_refs:
            plain_secrets.add(full_key)
            continue
        if name not in index:
            close = difflib.get_close_matches(name, index, n=1)
            shadows.update(f"{PROJECT}:{c}" for c in close)  # the key meant: not reported missing as well
            problems.append(Problem(full_key, "an unknown key", f"{PROJECT}:<key> with a key sovkit knows",
                                    fix=f"did you mean {PROJECT}:{close[0]}?" if close else
                                    "run `sovkit show STACK` or read Pulumi.yaml for the keys", line=where))
            continue
        section, _field = index[name]
        sections[section][name] = value
    todos = _todo_markers(config, lines)
    problems += content + todos
    covered = [p.key_path for p in content + todos]
    validated = {}
    for section, data in sections.items():
        try:
            validated[section] = SECTIONS[section].model_validate(data)
        except ValidationError as err:
            # A TODO marker (or a value refused for its size or characters) is reported once, not again as a value
            # of the wrong form; a key written wrongly is not reported missing as well.
            problems += [p for p in _pydantic_problems(err, SECTIONS[section], data, lines, shadows)
                         if not any(p.key_path.startswith(c) for c in covered) and not _shadowed(p, shadows)]
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


def _namespace_problem(full_key: str, line: int | None) -> Problem:
    namespace, _, name = full_key.partition(":")
    known = [PROJECT, *PROVIDER_NAMESPACES]
    close = difflib.get_close_matches(namespace.lower(), known, n=1, cutoff=0.6)
    return Problem(full_key, f"the namespace {namespace!r}", f"{PROJECT}:<key>, or a setting of a provider the "
                   "program uses (" + ", ".join(f"{n}:" for n in PROVIDER_NAMESPACES) + ")",
                   fix=(f"did you mean {close[0]}:{name}? " if close else "") +
                   "A key of any other namespace is read by nobody: its setting would silently not apply", line=line)


def _key_is_plain(key: str) -> bool:
    return key.isascii() and key.isprintable()


def _char(ch: str) -> str:
    """A character as an operator can look it up: U+0430 CYRILLIC SMALL LETTER A."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, '(a control character)')}"


def _content_problems(config: dict[str, object], lines: dict | None,
                      secret_refs: set[str]) -> tuple[list[Problem], set[str]]:
    """Keys that are not plain ASCII, values larger than the bounds, and text with invisible or look-alike
    characters: (problems, the key paths of keys written wrongly). Values of other namespaces, and API keys
    written in the clear, are checked without being shown."""
    problems: list[Problem] = []
    shadows: set[str] = set()

    def visit(node: object, path: tuple, show: bool) -> None:
        where = _format_path(path) or "config"
        if isinstance(node, dict | list):
            if len(node) > MAX_ENTRIES:
                problems.append(Problem(where, _kind(node), f"at most {MAX_ENTRIES} entries in one list or map",
                                        line=_line(lines, list(path))))
                return
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, v in items:
                if isinstance(node, dict) and not _key_is_plain(str(k)):
                    bad = next(i for i, ch in enumerate(str(k)) if not _key_is_plain(ch))
                    problems.append(Problem(_format_path((*path, k)), f"{short(str(k))}: {_char(str(k)[bad])} at "
                                            f"character {bad + 1}", "a key in plain ASCII letters, digits and signs",
                                            fix="retype the key: a look-alike or invisible character makes it "
                                                "another key, which nothing reads", line=_line(lines, [*path, k])))
                    shadows.add(_format_path((*path, k)))
                    continue
                if not path and isinstance(k, str):
                    namespace, _, name = k.partition(":")
                    if name in secret_refs or (isinstance(v, dict) and set(v) == {"secure"}):
                        continue  # an API key: never shown, and reported by the rules when in the clear
                    visit(v, (k,), namespace == PROJECT)
                else:
                    visit(v, (*path, k), show)
        elif isinstance(node, str):
            value = short(node) if show else "the value"
            if len(node) > MAX_VALUE_CHARS:
                problems.append(Problem(where, f"a text of {len(node):,} characters",
                                        f"at most {MAX_VALUE_CHARS:,} characters", line=_line(lines, list(path))))
                return
            found = _character_problem(node)
            if found is not None:
                what, allowed, fix = found
                problems.append(Problem(where, f"{value}: {what}", allowed, fix=fix, line=_line(lines, list(path))))

    visit(config, (), True)
    return problems, shadows


def _character_problem(text: str) -> tuple[str, str, str] | None:
    """(what, allowed, fix) for the first invisible character, ASCII look-alike or word mixing Latin letters with
    look-alike letters of another script in `text`; None for clean text. Accented Latin (Brasília), and any text in
    one script (Devanagari, Cyrillic, ...), passes."""
    if text.isascii() and text.isprintable():
        return None
    scripts: set[str] = set()
    word_start, foreign = 0, None
    previous = ""
    for i, ch in enumerate(text + " "):  # the space ends the last word
        category = unicodedata.category(ch)
        invisible = (category in INVISIBLE_CATEGORIES and ch not in "\t\n\r") or ch in INVISIBLE_LETTERS
        # A zero-width (non-)joiner after a virama is part of the spelling of Indic words (IDNA allows it there).
        if invisible and not (ch in JOINERS and previous and unicodedata.combining(previous) == 9):
            return (f"{_char(ch)} at character {i + 1}", "text without invisible characters (zero-width, "
                    "direction, control or format characters)", "retype the value: an invisible character makes two "
                    "values that look alike differ, or reorders what is shown")
        if any(low <= ord(ch) <= high for low, high in LOOKALIKE_RANGES):
            return (f"{_char(ch)} at character {i + 1}", "plain letters, digits and signs, not their fullwidth or "
                    "mathematical look-alikes", f"write {unicodedata.normalize('NFKC', ch)!r} in its place")
        if category.startswith("L"):
            script = unicodedata.name(ch, "").partition(" ")[0]
            scripts.add(script)
            if script in LOOKALIKE_SCRIPTS and foreign is None:
                foreign = (i, ch, script)
        elif not category.startswith("M") and ch not in JOINERS:
            if foreign is not None and "LATIN" in scripts:
                at, letter, script = foreign
                return (f"the word {text[word_start:i]!r} mixes Latin letters with {script.title()} {_char(letter)} "
                        f"(character {at + 1})", "each word in one script: no Cyrillic, Greek, Armenian or Cherokee "
                        "look-alikes among Latin letters", "retype the word with a Latin keyboard layout")
            scripts, foreign, word_start = set(), None, i + 1
        previous = ch
    return None


def _shadowed(problem: Problem, shadows: set[str]) -> bool:
    """A key reported missing because it was written wrongly (and reported so): in a misspelt namespace, with a
    look-alike letter in its place, or with an invisible character added."""
    if problem.found != "nothing (the key is missing)":
        return False
    wanted = problem.key_path
    for written in shadows:
        visible = "".join(ch for ch in written if _key_is_plain(ch) or unicodedata.category(ch).startswith("L"))
        if written == wanted or visible == wanted or (len(written) == len(wanted) and all(
                w == k for w, k in zip(written, wanted, strict=True) if w.isascii())):
            return True
    return False


def secret_keys_named(config: dict[str, object]) -> set[str]:
    """Config keys the stack names as holding a secret ({pulumiSecret: NAME}: tenants' API keys, an existing
    cluster's kubeconfig, the model store's credentials)."""
    def names(value: object) -> set[str]:
        if isinstance(value, dict):
            found = {value["pulumiSecret"]} if isinstance(value.get("pulumiSecret"), str) else set()
            return found.union(*(names(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(names(v) for v in value))
        return set()

    return set().union(*(names(v) for k, v in config.items() if k.startswith(PROJECT + ":")))


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


def _pydantic_problems(err: ValidationError, model: type[BaseModel], data: dict, lines: dict | None,
                       shadows: set[str] | None = None) -> list[Problem]:
    """The schema's errors as Problems; the key a misspelt key was meant to be is added to `shadows`."""
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
            if close and shadows is not None:
                shadows.add(_format_path(_full((*loc[:-1], close[0]))))
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


# The tags pydantic puts in an error's location for the members of a union (tensorParallel: int | "auto").
UNION_TAGS = frozenset({"int", "str", "float", "bool", "bytes", "none", "dict", "list"})


def _looks_like_key(part: object) -> bool:
    return isinstance(part, str) and part not in UNION_TAGS and not any(c in part for c in "[]'()")


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
