"""The kubernetes weights verifier image's recipe (sovkit.models.verifier_image): the chart pulls the tag the recipe
makes, the lock is the verifier's packages at the kit's pins with every wheel hashed, the base is pinned by digest,
and the image verifies with the very file the hosts run."""

from __future__ import annotations

import re

import yaml

from sovkit.config.runtime import weights_verifier_pins
from sovkit.models import verifier_image
from sovkit.serving import CHART_DIR


def test_the_chart_pulls_the_tag_the_recipe_makes():
    """Any change to the Containerfile, the lock or verify_weights.py changes the tag: the chart must follow (set
    images.verifier.tag in charts/sovkit-serving/values.yaml to verifier_image.image_tag() and bump the chart)."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
    assert values["images"]["verifier"] == {"repository": verifier_image.REPOSITORY,
                                            "tag": verifier_image.image_tag()}


def test_the_lock_is_the_verifiers_packages_at_the_kits_pins_every_wheel_hashed():
    lines = [line for line in verifier_image.LOCK.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==\S+ --hash=sha256:[0-9a-f]{64}", line) for line in lines), lines
    pins = verifier_image.pins()
    for pin in [*weights_verifier_pins(), verifier_image.PIP]:
        name, version = pin.split("==")
        assert pins[name] == version, pin


def test_the_recipe_pins_its_base_by_digest_and_runs_the_verifier_unprivileged():
    text = verifier_image.CONTAINERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE=\S+@sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BASE}", "${BASE}"]
    assert "--no-index" in text and "--require-hashes" in text  # nothing but the lock's wheels
    assert re.search(r"^USER [1-9][0-9]{4}:[1-9][0-9]{4}$", text, re.MULTILINE)  # numeric: runAsNonRoot can check it
    assert 'ENTRYPOINT ["python3", "/opt/sovkit-verifier/verify_weights.py"]' in text


def test_the_context_carries_the_hosts_verifier_byte_for_byte(tmp_path):
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    context = verifier_image.write_context(tmp_path / "ctx", [wheel])
    assert (context / "verify_weights.py").read_bytes() == verifier_image.VERIFIER.read_bytes()
    assert verifier_image.VERIFIER.name == "verify_weights.py" and verifier_image.VERIFIER.parent.name == "models"
    assert sorted(p.name for p in context.iterdir()) == ["Containerfile", "requirements.txt", "verify_weights.py",
                                                         "wheels"]
    assert [p.name for p in (context / "wheels").iterdir()] == [wheel.name]
