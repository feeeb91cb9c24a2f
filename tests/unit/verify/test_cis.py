"""The CIS Debian 12 mapping (sovkit/verify/cis.py): every Level 1 Server item has exactly one status, the two data
files agree, and a broken copy of either is refused with a message naming the file and the item."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from sovkit.verify.cis import STATUSES, CoverageError, coverage, load_benchmark, summary
from sovkit.verify.report import load_controls

BENCHMARK = load_benchmark()
ITEMS = coverage()
CONTROLS = load_controls()


def test_the_benchmark_is_cis_debian_12_v1_1_0_in_its_own_numbering():
    """The item list is the whole benchmark (310 items: 249 Level 1 Server, 61 Level 2 only), in the numbering the
    controls cite (5.1.x sshd, 1.1.1.x filesystem modules, 3.3.x network sysctls)."""
    assert BENCHMARK["benchmark"]["version"] == "1.1.0"
    by_id = {str(i["id"]): i for i in BENCHMARK["items"]}
    assert len(by_id) == len(BENCHMARK["items"]) == 310
    assert sum(1 for i in BENCHMARK["items"] if i["level"] == 1) == 249
    assert "PermitRootLogin" in by_id["5.1.20"]["title"]
    assert "cramfs" in by_id["1.1.1.1"]["title"]
    assert "tcp syn cookies" in by_id["3.3.10"]["title"]
    assert all(re.fullmatch(r"\d+(\.\d+)+", i) for i in by_id)


def test_the_benchmark_file_stores_no_implementation_status():
    """Implemented is derived from controls.yaml's cis lists (one source of truth), never written in the benchmark."""
    allowed = {"id", "level", "title", "waived", "out_of_scope"}
    extra = {str(i["id"]): sorted(set(i) - allowed) for i in BENCHMARK["items"] if set(i) - allowed}
    assert extra == {}


@pytest.mark.parametrize("item", [i for i in ITEMS if i.level == 1], ids=lambda i: i.id)
def test_every_level_1_item_has_exactly_one_status(item):
    raw = next(i for i in BENCHMARK["items"] if str(i["id"]) == item.id)
    given = [k for k in ("waived", "out_of_scope") if k in raw] + (["implemented"] if item.controls else [])
    assert len(given) == 1, f"{item.id}: {given}"
    assert item.status in STATUSES
    assert bool(item.controls) == (item.status == "implemented")
    assert bool(item.reason) == (item.status != "implemented")


def test_every_cis_id_a_control_cites_is_in_the_benchmark():
    known = {str(i["id"]) for i in BENCHMARK["items"]}
    cited = {(cid, str(i)) for cid, c in CONTROLS.items() for i in c["cis"]}
    assert {(cid, i) for cid, i in cited if i not in known} == set()


def test_the_summary_counts_the_level_1_items():
    counts = summary(ITEMS)
    assert counts["implemented"] + counts["waived"] + counts["out_of_scope"] == counts["total"] == 249
    implemented = {str(i) for c in CONTROLS.values() for i in c["cis"]}
    assert counts["implemented"] == sum(1 for i in ITEMS if i.level == 1 and i.id in implemented)


# -- a deliberately broken copy of the data is refused ------------------------------------------------------------

def _copy(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(resources.files("sovkit.data").joinpath("cis_debian12.yaml").read_text())
    change({str(i["id"]): i for i in data["items"]})
    path = tmp_path / "cis_debian12.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_an_item_both_implemented_and_waived_is_refused(tmp_path):
    path = _copy(tmp_path, lambda items: items["5.1.20"].update(waived="root logs in on purpose"))
    with pytest.raises(CoverageError) as err:
        coverage(path)
    assert str(path) in str(err.value)
    assert re.search(r"item 5\.1\.20 is implemented by SOV-OS-001 .* and also waived", str(err.value))


def test_a_level_1_item_with_no_status_is_refused(tmp_path):
    path = _copy(tmp_path, lambda items: items["1.7.2"].pop("waived"))
    with pytest.raises(CoverageError, match=r"item 1\.7\.2 \(Level 1\) has no status"):
        coverage(path)


def test_an_item_both_waived_and_out_of_scope_is_refused(tmp_path):
    path = _copy(tmp_path, lambda items: items["1.4.1"].update(out_of_scope="the operator's"))
    with pytest.raises(CoverageError, match=r"item 1\.4\.1 is both waived and out of scope"):
        coverage(path)


def test_a_cis_id_the_benchmark_does_not_have_is_refused():
    controls = {**CONTROLS, "SOV-OS-001": {**CONTROLS["SOV-OS-001"], "cis": ["5.1.20", "5.1.99"]}}
    with pytest.raises(CoverageError, match=r"SOV-OS-001 in sovkit/data/controls\.yaml cites CIS 5\.1\.99, which the "
                                            r"benchmark does not have"):
        coverage(controls=controls)


def test_a_level_2_item_may_stay_unassessed():
    """Only Level 1 Server items must have a status; a Level 2 item nobody implements is `not assessed`."""
    item = next(i for i in ITEMS if i.id == "1.1.2.3.1")  # /home on its own partition: Level 2
    assert (item.level, item.status) == (2, "not assessed")


def test_the_hardening_guide_shows_todays_counts():
    """docs/hardening.md quotes the summary line of `sovkit show --controls`; implementing or waiving an item
    updates it there too."""
    counts = summary(ITEMS)
    line = (f"Level 1 Server: {counts['implemented']} implemented, {counts['waived']} waived, "
            f"{counts['out_of_scope']} out of scope, of {counts['total']} items")
    guide = (Path(__file__).parents[3] / "docs" / "hardening.md").read_text()
    assert line in guide, f"docs/hardening.md should quote: {line}"
