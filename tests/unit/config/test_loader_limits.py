"""What the loader refuses before the schema sees a value: files too large, not UTF-8 or using YAML aliases, a
document that is not a map, misspelt namespaces, keys and values with look-alike or invisible characters, values
beyond the bounds, and IPv6 zone ids. Every message names the key path (or the file), never a Python class name."""

import re
import time
import tracemalloc
from pathlib import Path

import pytest

from sovkit.config import load_pulumi_config, load_stack, loader
from sovkit.config.types import _address, _cidr, _host, is_address
from sovkit.errors import StackError

STACKS = Path(__file__).parents[3] / "stacks"
# What a Python class name in a message would look like (ruamel's, the builtins', the schema's models).
CLASS_NAME = re.compile(r"\b(Commented\w+|Scalar\w+|NoneType|dict|tuple|str|int|float|bool|[A-Z]\w*(Spec|Section|"
                        r"Group|Slot|Ref|Receiver|Repository|Limit))\b|instance of|<class")


def stack_text(name: str = "br-ministerio-cpu") -> str:
    return (STACKS / f"Pulumi.{name}.yaml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str | bytes, name: str = "Pulumi.br-ministerio-cpu.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> StackError:
    with pytest.raises(StackError) as caught:
        load_stack(path)
    assert not CLASS_NAME.search(str(caught.value)), str(caught.value)
    return caught.value


def edited(tmp_path: Path, old: str, new: str, stack: str = "br-ministerio-cpu") -> Path:
    text = stack_text(stack)
    assert old in text, old
    return write(tmp_path, text.replace(old, new, 1), f"Pulumi.{stack}.yaml")


# --- the file -------------------------------------------------------------------------------------------


def test_a_file_over_the_bound_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    path = write(tmp_path, stack_text() + "#" * loader.MAX_STACK_FILE_BYTES)

    def never(*_args, **_kwargs):
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(loader, "YAML", never)
    error = refused(path)
    assert [p.key_path for p in error.problems] == ["(file)"]
    assert "at most 1,048,576 bytes" in error.problems[0].allowed
    assert f"{path.stat().st_size:,} bytes" in error.problems[0].found


def test_a_file_at_the_bound_is_read(tmp_path):
    text = stack_text()
    path = write(tmp_path, text + "#" * (loader.MAX_STACK_FILE_BYTES - len(text.encode()) - 1) + "\n")
    assert path.stat().st_size == loader.MAX_STACK_FILE_BYTES
    assert load_stack(path).name == "br-ministerio-cpu"


def test_a_file_not_in_utf8_names_the_byte_and_line(tmp_path):
    error = refused(write(tmp_path, stack_text().encode("latin-1")))
    problem = error.problems[0]
    text = stack_text()
    offset = len(text[: text.index("í")].encode("latin-1"))
    assert problem.key_path == "(file)" and problem.line == text[: text.index("í")].count("\n") + 1
    assert f"0xed at byte offset {offset}" in problem.found and "not UTF-8" in problem.found
    assert problem.allowed == "a text file in UTF-8"


def test_a_utf16_file_is_named_so(tmp_path):
    error = refused(write(tmp_path, stack_text().encode("utf-16")))
    assert "UTF-16" in error.problems[0].fix


def test_a_windows_file_with_a_byte_order_mark_passes(tmp_path):
    """Notepad writes UTF-8 with a byte-order mark and CRLF line ends: that is UTF-8, and no value holds the mark."""
    data = b"\xef\xbb\xbf" + stack_text().encode().replace(b"\n", b"\r\n")
    assert load_stack(write(tmp_path, data)).site.city == "Brasília"


@pytest.mark.parametrize(("text", "found"), [
    ("- a\n- b\n", "a list of 2 entries"),
    ("hello\n", "a text ('hello')"),
    ("42\n", "a number (42)"),
    ("foo: 1\n", "a map without a config: key"),
    ("config: [1, 2]\n", "a list of 2 entries"),
    ("config: text\n", "a text ('text')"),
    ("config:\n", "nothing"),
])
def test_a_document_that_is_not_a_config_map_says_what_it_is(tmp_path, text, found):
    error = refused(write(tmp_path, text))
    assert [(p.key_path, p.found) for p in error.problems] == [("config", found)]


# --- anchors, aliases, merge keys -----------------------------------------------------------------------


def billion_laughs(levels: int) -> str:
    lines = ["config:", '  a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [10, 40])  # 9**10 and 9**40 strings if expanded
def test_an_alias_bomb_fails_fast_in_bounded_memory(tmp_path, levels):
    path = write(tmp_path, billion_laughs(levels))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = refused(path)
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 0.5, elapsed
    assert peak < 8 * 1024 * 1024, peak
    problem = error.problems[0]
    assert problem.line == 3 and problem.found == "an alias *a0 (its anchor &a0 is on line 2)"
    assert "no YAML anchors" in problem.allowed


def test_an_alias_is_refused_at_its_line_and_key(tmp_path):
    path = edited(tmp_path, "  sovereign-ai:region: Distrito Federal", "  sovereign-ai:region: &where Distrito Federal")
    path.write_text(path.read_text(encoding="utf-8").replace("  sovereign-ai:city: Brasília",
                                                             "  sovereign-ai:city: *where"), encoding="utf-8")
    error = refused(path)
    assert [(p.key_path, p.line) for p in error.problems] == [("sovereign-ai:city", 9)]


def test_an_anchor_alone_is_refused(tmp_path):
    error = refused(edited(tmp_path, "  sovereign-ai:region: Distrito Federal",
                           "  sovereign-ai:region: &where Distrito Federal"))
    assert [(p.key_path, p.found) for p in error.problems] == [("sovereign-ai:region", "an anchor &where")]


def test_a_merge_key_is_refused(tmp_path):
    error = refused(edited(tmp_path, "    plantao: {email: plantao@ministerio.gov.example}",
                           "    plantao:\n      <<: {email: plantao@ministerio.gov.example}"))
    assert [(p.key_path, p.found) for p in error.problems] == [("sovereign-ai:alertReceivers.plantao",
                                                                "a merge key <<")]


def test_a_quoted_double_angle_is_a_key_not_a_merge(tmp_path):
    error = refused(edited(tmp_path, "    plantao: {email: plantao@ministerio.gov.example}",
                           '    plantao: {email: plantao@ministerio.gov.example, "<<": x}'))
    assert "merge" not in str(error) and "unknown key '<<'" in str(error)


def test_nesting_beyond_the_bound_is_refused_without_recursing(tmp_path):
    error = refused(write(tmp_path, "config:\n  x: " + "[" * 50_000 + "]" * 50_000 + "\n"))
    assert error.problems[0].found == f"values nested more than {loader.MAX_DEPTH} levels deep"


# --- namespaces -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "meant"), [("sovereign_ai", "sovereign-ai"), ("sovereing-ai", "sovereign-ai"),
                                                ("Sovereign-AI", "sovereign-ai"), ("kubernets", "kubernetes")])
def test_a_misspelt_namespace_is_refused_with_the_one_meant(tmp_path, written, meant):
    error = refused(edited(tmp_path, "sovereign-ai:logRetentionDays: 180", f"{written}:logRetentionDays: 400"))
    assert [p.key_path for p in error.problems] == [f"{written}:logRetentionDays"]
    assert f"did you mean {meant}:logRetentionDays?" in error.problems[0].fix


def test_an_unrelated_namespace_is_refused_without_a_guess(tmp_path):
    error = refused(edited(tmp_path, "sovereign-ai:logRetentionDays: 180", "aws:region: af-south-1"))
    assert error.problems[0].found == "the namespace 'aws'" and "did you mean" not in error.problems[0].fix


def test_a_required_key_in_a_misspelt_namespace_is_reported_once(tmp_path):
    error = refused(edited(tmp_path, "sovereign-ai:city: Brasília", "sovereign_ai:city: Brasília"))
    assert [p.key_path for p in error.problems] == ["sovereign_ai:city"]


def test_the_program_namespaces_pass(tmp_path):
    extra = "".join(f"  {ns}:setting: x\n" for ns in loader.PROVIDER_NAMESPACES)
    site = load_stack(edited(tmp_path, "config:\n", "config:\n" + extra))
    assert site.name == "br-ministerio-cpu"


def test_the_pulumi_program_refuses_a_misspelt_namespace_too():
    values = {"sovereign_ai:siteName": "x"}
    with pytest.raises(StackError) as caught:
        load_pulumi_config(values, set(), "pulumi config")
    assert "sovereign_ai:siteName" in [p.key_path for p in caught.value.problems]


# --- characters in keys and values ----------------------------------------------------------------------


def test_a_look_alike_letter_in_a_key_is_named_and_the_key_not_reported_missing(tmp_path):
    error = refused(edited(tmp_path, "  sovereign-ai:city:", "  sovereign-ai:\u0441ity:"))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:\u0441ity"]
    assert "U+0441 CYRILLIC SMALL LETTER ES at character 14" in error.problems[0].found


def test_a_look_alike_in_a_nested_key_is_reported_once(tmp_path):
    error = refused(edited(tmp_path, "rateLimit: {requestsPerMinute: 30", "rateLimit: {requestsPerMinut\u0435: 30"))
    assert [p.key_path for p in error.problems] == [
        "sovereign-ai:tenants.atendimento.rateLimit.requestsPerMinut\u0435"]


def test_an_invisible_character_in_a_key_is_shown(tmp_path):
    error = refused(edited(tmp_path, "  sovereign-ai:city:", "  sovereign-ai:city\u200b:"))
    problem = error.problems[0]
    assert [p.key_path for p in error.problems] == ["sovereign-ai:city\u200b"]
    assert "\\u200b" in problem.found and "U+200B ZERO WIDTH SPACE at character 18" in problem.found


@pytest.mark.parametrize(("value", "what"), [
    ("Distrito\u200b Federal", "U+200B ZERO WIDTH SPACE at character 9"),
    ("Distrito\u200d Federal", "U+200D ZERO WIDTH JOINER at character 9"),
    ("Distrito\u2060Federal", "U+2060 WORD JOINER at character 9"),
    ("\ufeffDistrito Federal", "U+FEFF ZERO WIDTH NO-BREAK SPACE at character 1"),
    ("Distrito \u202eFederal", "U+202E RIGHT-TO-LEFT OVERRIDE at character 10"),
    ("Distrito \u2066Federal\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE at character 10"),
    ("Distrito \uff26ederal", "U+FF26 FULLWIDTH LATIN CAPITAL LETTER F at character 10"),
    ("Distrito \U0001d405ederal", "U+1D405 MATHEMATICAL BOLD CAPITAL F at character 10"),
    ("Distrit\u043e Federal", "the word 'Distrit\u043e' mixes Latin letters with Cyrillic U+043E"),
    ("Distrito F\u0435deral", "U+0435 CYRILLIC SMALL LETTER IE (character 11)"),
    ("Distrito \u03a1ederal", "mixes Latin letters with Greek U+03A1 GREEK CAPITAL LETTER RHO"),
    ("Distrito Fede\u0580al", "mixes Latin letters with Armenian"),
    ("Distrito Federa\u13de", "mixes Latin letters with Cherokee"),
])
def test_invisible_and_look_alike_characters_in_values_are_refused(tmp_path, value, what):
    error = refused(edited(tmp_path, "sovereign-ai:region: Distrito Federal", f'sovereign-ai:region: "{value}"'))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:region"]
    assert what in error.problems[0].found


@pytest.mark.parametrize("value", ["Brasília", "Coordenação-Geral de Infraestrutura de TI", "महाराष्ट्र शासन",
                                   "मराठी र्\u200dया", "Київ", "Αθήνα", "São Paulo \u2013 Região Sudeste",
                                   "Zürich/Genève", "Kyiv (Київ)", "10 µs", "1º andar"])
def test_real_text_in_any_script_passes(tmp_path, value):
    site = load_stack(edited(tmp_path, "sovereign-ai:region: Distrito Federal", f'sovereign-ai:region: "{value}"'))
    assert site.site.region == value


def test_a_value_in_another_namespace_is_checked_but_not_shown(tmp_path):
    error = refused(edited(tmp_path, "config:\n", 'config:\n  openstack:password: "s3cr\u200bet-value"\n'))
    assert [p.key_path for p in error.problems] == ["openstack:password"]
    assert "s3cr" not in str(error) and error.problems[0].found.startswith("the value: U+200B")


# --- bounds ---------------------------------------------------------------------------------------------


def test_a_value_over_the_bound_is_refused_with_its_key(tmp_path):
    long = "x" * (loader.MAX_VALUE_CHARS + 1)
    error = refused(edited(tmp_path, "sovereign-ai:region: Distrito Federal", f"sovereign-ai:region: {long}"))
    assert [(p.key_path, p.found) for p in error.problems] == [("sovereign-ai:region", "a text of 4,097 characters")]
    assert long not in str(error)


def test_a_value_at_the_bound_passes(tmp_path):
    site = load_stack(edited(tmp_path, "sovereign-ai:region: Distrito Federal",
                             "sovereign-ai:region: " + "x" * loader.MAX_VALUE_CHARS))
    assert len(site.site.region) == loader.MAX_VALUE_CHARS


def test_a_list_over_the_bound_is_refused_with_its_key(tmp_path):
    domains = "".join(f"    - d{i}.gov.example\n" for i in range(loader.MAX_ENTRIES))
    error = refused(edited(tmp_path, "    - ministerio.gov.example\n", "    - ministerio.gov.example\n" + domains))
    assert [(p.key_path, p.found) for p in error.problems] == [("sovereign-ai:inCountryDomains",
                                                                f"a list of {loader.MAX_ENTRIES + 2} entries")]


def test_a_map_over_the_bound_is_refused_with_its_key(tmp_path):
    hosts = "".join(f"    h{i}: {{address: 192.0.2.{i % 250 + 1}, role: cpu_worker}}\n"
                    for i in range(loader.MAX_ENTRIES + 1))
    error = refused(edited(tmp_path, "  sovereign-ai:hosts:\n", "  sovereign-ai:hosts:\n" + hosts))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:hosts"]


# --- IPv6 zone ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize("check", [_address, _host])
def test_addresses_refuse_a_zone_id(check):
    with pytest.raises(ValueError, match="without a zone id, such as fe80::1 "):
        check("fe80::1%eth0")
    assert check("fe80::1") == "fe80::1"


def test_networks_refuse_a_zone_id():
    with pytest.raises(ValueError, match="without a zone id, such as fe80::/64 "):
        _cidr("fe80::%eth0/64")
    assert not is_address("fe80::1%eth0") and is_address("fe80::1")


@pytest.mark.parametrize(("old", "new", "key"), [
    ("{address: 192.0.2.21, role: cpu_worker}", "{address: 'fe80::21%eno1', role: cpu_worker}",
     "sovereign-ai:hosts.bsb-cpu-01.address"),
    ("    - 2001:db8:55::53\n", "    - fe80::53%eth0\n", "sovereign-ai:dnsResolvers[1]"),
    ("    - 2001:db8:55::/48\n", "    - fe80::%eth0/64\n", "sovereign-ai:inCountryCidrs[1]"),
])
def test_a_zone_id_in_the_stack_is_refused(tmp_path, old, new, key):
    error = refused(edited(tmp_path, old, new))
    assert [p.key_path for p in error.problems] == [key]
    assert "without a zone id" in error.problems[0].allowed


# --- no Python class name in any message ---------------------------------------------------------------


@pytest.mark.parametrize("wrong", ["[1, {a: 1}]", "{x: [1]}", "3.5", "true", "~", "[[1]]"])
def test_a_value_of_the_wrong_kind_is_described_in_words(tmp_path, wrong):
    text = stack_text("za-national-dc")
    for key in ("hosts", "models", "tenants", "inCountryCidrs", "alertReceivers", "allowedEndpoints", "mode"):
        start = text.index(f"  sovereign-ai:{key}:")
        end = text.find("\n  sovereign-ai:", start + 1) % (len(text) + 1)  # the last key runs to the end
        path = write(tmp_path, text[:start] + f"  sovereign-ai:{key}: {wrong}" + text[end:],
                     "Pulumi.za-national-dc.yaml")
        refused(path)
    nested = text.replace("maxContext: 32768", f"maxContext: {wrong}", 1)
    refused(write(tmp_path, nested, "Pulumi.za-national-dc.yaml"))
