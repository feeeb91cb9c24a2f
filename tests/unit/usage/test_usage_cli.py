"""`sovkit usage` refuses a period it cannot read before it reaches any host, and says what was wrong."""

from __future__ import annotations

import pytest

from sovkit.cli import run


@pytest.mark.parametrize(("args", "said"), [
    (["--from", "2026-13-01"], "'2026-13-01' is not a day (YYYY-MM-DD)"),
    (["--to", "last tuesday"], "'last tuesday' is not a day (YYYY-MM-DD)"),
    (["--from", "2026-12-05", "--to", "2026-12-01"], "--from 2026-12-05 is after --to 2026-12-01"),
])
def test_a_period_it_cannot_read_is_refused_with_what_was_found(args, said, capsys, tmp_path):
    assert run(["usage", "local", *args, "--output-dir", str(tmp_path)]) == 2
    assert said in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_stack_names_the_known_ones(capsys):
    assert run(["usage", "atlantis"]) == 2
    assert "local" in capsys.readouterr().err
