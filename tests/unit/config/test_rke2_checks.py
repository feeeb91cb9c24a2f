"""The rke2 role's input checks (sovkit/config/checks.py), the rules validate applies to the same stack keys."""

import pytest

from sovkit.config import checks

CIDRS, DOMAINS = ["198.51.100.0/24"], ["dc.gov.example"]


@pytest.mark.parametrize("url", ["https://mirror.dc.gov.example/rke2/v1.33.5+rke2r1/", "http://198.51.100.7/rke2/",
                                 "file:///srv/sovkit/bundle/rke2/v1.33.5+rke2r1/"])
def test_in_country_mirrors_pass(url):
    assert checks.artifact_mirror(url, CIDRS, DOMAINS) == []


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://github.com/rancher/rke2/releases/download/v1.33.5%2Brke2r1/", "in-country mirror"),
    ("https://ops:secret@mirror.dc.gov.example/rke2/", "without user:password@"),
    ("ftp://mirror.dc.gov.example/rke2/", "https://, http:// or file://"),
    ("file://relative/folder", "file:///an/absolute/folder"),
    ("", "https://, http:// or file://"),
])
def test_other_mirrors_are_refused(url, allowed):
    [finding] = checks.artifact_mirror(url, CIDRS, DOMAINS)
    assert allowed in finding.allowed
    assert "secret" not in finding.found


def test_the_checksum_file_is_pinned_by_a_sha256():
    assert checks.sha256_pin("sha256:" + "a" * 64) == []
    for bad in ("a" * 64, "sha256:" + "A" * 64, "sha256:" + "a" * 40, None):
        assert checks.sha256_pin(bad), bad


def test_the_role_may_call_them():
    assert checks.CHECKS["artifact_mirror"] is checks.artifact_mirror
    assert checks.CHECKS["sha256_pin"] is checks.sha256_pin
