"""Every mistake in the corpus is refused with a message naming the file, the key, the value and the rule."""

from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.errors import StackError

CORPUS = Path(__file__).parents[2] / "data" / "bad-stacks"
BAD_STACKS = sorted(CORPUS.glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    return [line.removeprefix("# expect: ").rstrip("\n") for line in path.read_text().splitlines()
            if line.startswith("# expect: ")]


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
