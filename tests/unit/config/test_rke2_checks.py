"""The rke2 role's input checks (sovkit/config/checks.py), the rules validate applies to the same stack keys; and the
etcd snapshot store's credentials, which validate requires exactly where rke2-server copies snapshots to S3."""

from pathlib import Path

import pytest
from pune_variants import STACKS, stack_variant

from sovkit.config import checks, load_stack
from sovkit.config.rke2 import snapshot_store
from sovkit.errors import Problem, StackError

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


# -- etcdSnapshotCredentials: required exactly when rke2-server copies etcd snapshots to the S3 state store ----------
ETCD_CREDENTIALS = """  sovereign-ai:etcdSnapshotCredentials:
    accessKeyId: {pulumiSecret: etcdSnapshotKeyId}
    secretAccessKey: {pulumiSecret: etcdSnapshotSecret}
"""
ZA_STATE = "  sovereign-ai:stateBackend: s3://pulumi-state?endpoint=objects.dc.gov.example&s3ForcePathStyle=true\n"


def refused(path: Path) -> list[Problem]:
    with pytest.raises(StackError) as caught:
        load_stack(path)
    return caught.value.problems


@pytest.mark.parametrize("name", ["za-national-dc", "id-sulsel-cloud"])
def test_the_shipped_rke2_sites_copy_snapshots_to_their_state_store_with_their_credentials(name):
    site = load_stack(STACKS / f"Pulumi.{name}.yaml")
    store = snapshot_store(site)
    assert store is not None and store.endpoint in site.residency.state_backend
    creds = site.platform.etcd_snapshot_credentials
    assert (creds.access_key_id.pulumi_secret, creds.secret_access_key.pulumi_secret) == ("etcdSnapshotKeyId",
                                                                                          "etcdSnapshotSecret")


@pytest.mark.parametrize("name", ["za-national-dc", "id-sulsel-cloud"])
def test_an_rke2_site_with_an_s3_state_store_and_no_credentials_is_refused_naming_the_store(tmp_path, name):
    [problem] = refused(stack_variant(tmp_path, name, (ETCD_CREDENTIALS, "")))
    assert (problem.key_path, problem.found) == ("sovereign-ai:etcdSnapshotCredentials", "nothing")
    store = snapshot_store(load_stack(STACKS / f"Pulumi.{name}.yaml"))
    assert f"etcd snapshots go to bucket {store.bucket} at {store.endpoint}" in problem.allowed
    assert "{pulumiSecret: NAME} or {file: /absolute/path}" in problem.allowed and "pulumi config set" in problem.fix


def test_credentials_are_refused_where_snapshots_stay_on_the_servers(tmp_path):
    [problem] = refused(stack_variant(tmp_path, "za-national-dc",
                              (ZA_STATE, "  sovereign-ai:stateBackend: file:///srv/sovkit/pulumi-state\n")))
    assert (problem.key_path, problem.found) == ("sovereign-ai:etcdSnapshotCredentials", "set")
    assert "snapshots stay on the servers" in problem.allowed and problem.fix == "remove etcdSnapshotCredentials"


def test_a_file_state_store_needs_none(tmp_path):
    site = load_stack(stack_variant(tmp_path, "za-national-dc", (ETCD_CREDENTIALS, ""),
                            (ZA_STATE, "  sovereign-ai:stateBackend: file:///srv/sovkit/pulumi-state\n")))
    assert snapshot_store(site) is None and site.platform.etcd_snapshot_credentials is None


def test_credentials_are_refused_on_a_site_that_bootstraps_no_rke2(tmp_path):
    """A hosts-mode site (in-mh-pune, whose state is a file:// path) with them: nothing would read them."""
    mode = "  sovereign-ai:mode: hosts\n"
    [problem] = refused(stack_variant(tmp_path, "in-mh-pune", (mode, mode + ETCD_CREDENTIALS)))
    assert (problem.key_path, problem.found) == ("sovereign-ai:etcdSnapshotCredentials", "set")
    assert "sovkit bootstraps no RKE2 on this site" in problem.allowed


def test_a_credential_as_a_file_passes_and_a_relative_path_is_refused(tmp_path):
    as_file = ETCD_CREDENTIALS.replace("{pulumiSecret: etcdSnapshotSecret}", "{file: /etc/sovkit/keys/etcd-secret}")
    site = load_stack(stack_variant(tmp_path, "za-national-dc", (ETCD_CREDENTIALS, as_file)))
    assert site.platform.etcd_snapshot_credentials.secret_access_key.file == "/etc/sovkit/keys/etcd-secret"
    relative = ETCD_CREDENTIALS.replace("{pulumiSecret: etcdSnapshotSecret}", "{file: keys/etcd-secret}")
    problems = refused(stack_variant(tmp_path, "za-national-dc", (ETCD_CREDENTIALS, relative)))
    assert [p.key_path for p in problems] == ["sovereign-ai:etcdSnapshotCredentials.secretAccessKey"]


@pytest.mark.parametrize("value", ["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                   "minio+etcd=~!#%&()*,-.:;<>?@[]^_{|}"])
def test_environment_values_systemd_reads_as_written_pass(value):
    assert checks.environment_value(value) == []


@pytest.mark.parametrize("value", ["", None, "a b", 'a"b', "a'b", "a$b", "a\\b", "a`b", "a\nb", "a\n", "é", "a\tb"])
def test_other_environment_values_are_refused_never_shown(value):
    [finding] = checks.environment_value(value)
    assert not value or value not in finding.found
