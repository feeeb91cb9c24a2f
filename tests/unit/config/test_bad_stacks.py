"""Every mistake in the corpus is refused with a message naming the file, the key, the value and the rule."""

import re
from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.errors import StackError

CORPUS = Path(__file__).parents[2] / "data" / "bad-stacks"
BAD_STACKS = sorted(CORPUS.glob("*.yaml"))


def header(path: Path, tag: str) -> list[str]:
    """The `# <tag>: ` lines of a corpus file (read as bytes: one corpus file is deliberately not UTF-8)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line.removeprefix(f"# {tag}: ") for line in text.splitlines() if line.startswith(f"# {tag}: ")]


def expectations(path: Path) -> list[str]:
    return header(path, "expect")


def names(expected: str, key_path: str) -> bool:
    """An expect line names a key path as a whole (sovereign-ai:inCountryCidrs is not named by ...Cidrs[3])."""
    return re.search(rf"(?<![\w:.\[\]-]){re.escape(key_path)}(?![\w.\[-])", expected) is not None


def test_corpus_is_large_and_every_file_states_its_expectations():
    assert len(BAD_STACKS) >= 25
    for path in BAD_STACKS:
        assert expectations(path), f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", BAD_STACKS, ids=lambda p: p.stem)
def test_bad_stack_is_refused_with_its_message(path: Path):
    with pytest.raises(StackError) as caught:
        load_stack(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert "nothing was changed" in message.splitlines()[0]
    for expected in expectations(path):
        assert expected in message, f"{path.name}: {expected!r} not in:\n{message}"
    # Every problem names where it is, what was found and what is allowed.
    for problem in caught.value.problems:
        assert problem.key_path and problem.found and problem.allowed, problem
        assert f"  found:   {problem.found}" in message and f"  allowed: {problem.allowed}" in message


@pytest.mark.parametrize("path", BAD_STACKS, ids=lambda p: p.stem)
def test_bad_stack_has_only_the_problems_it_expects(path: Path):
    """A corpus file tests one mistake: every problem it yields is at a key path its expect lines name, so a file
    that drifts (the shipped stack it copies changed, a second mistake crept in) fails here."""
    with pytest.raises(StackError) as caught:
        load_stack(path)
    expected = expectations(path)
    stray = [p for p in caught.value.problems if not any(names(e, p.key_path) for e in expected)]
    assert not stray, f"{path.name} yields problems its expect lines do not name: " + "; ".join(
        f"{p.key_path} ({p.found})" for p in stray)


@pytest.mark.parametrize("path", [p for p in BAD_STACKS if header(p, "secret")], ids=lambda p: p.stem)
def test_bad_stack_never_prints_its_secrets(path: Path):
    with pytest.raises(StackError) as caught:
        load_stack(path)
    message = str(caught.value) + repr(caught.value.problems)
    for secret in header(path, "secret"):
        assert secret not in message
