"""The residency transform refuses crafted violating resources in every shipped stack, naming resource and rule."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from sovkit.config import SiteConfig, load_stack
from sovkit.infra import residency
from sovkit.infra.nodes import openstack
from sovkit.infra.residency import ResidencyError, ResidencyPolicy, check_backend
from sovkit.infra.testing import ROOT, run_program, stack_names

STACKS = stack_names()


def site_of(stack: str) -> SiteConfig:
    return load_stack(ROOT / "stacks" / f"Pulumi.{stack}.yaml")


def _region(site: SiteConfig) -> str:
    return site.infrastructure.openstack_region or "in-country-1"


# Each crafted resource breaks exactly one rule: (rule id, resource name, how to make it).
VIOLATIONS = {
    "image-from-docker-hub": (residency.IMAGE_RULE, lambda site: k8s.core.v1.Pod(
        "image-from-docker-hub", spec={"containers": [{"name": "c", "image": "docker.io/library/busybox:1.36"}]})),
    "image-lookalike-registry": (residency.IMAGE_RULE, lambda site: k8s.apps.v1.Deployment(
        "image-lookalike-registry", spec={"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
                {"name": "c", "image": site.residency.container_registry + ".evil.example/vllm:1"}]}}})),
    "lb-service": (residency.LOADBALANCER_RULE, lambda site: k8s.core.v1.Service(
        "lb-service", spec={"type": "LoadBalancer", "ports": [{"port": 443}]})),
    "chart-from-internet": (residency.CHART_RULE, lambda site: k8s.helm.v3.Release(
        "chart-from-internet", chart="kube-prometheus-stack",
        repository_opts={"repo": "https://prometheus-community.github.io/helm-charts"})),
    "ssh-open-v4": (residency.OPEN_RULE_RULE, lambda site: openstack.networking.SecGroupRule(
        "ssh-open-v4", direction="ingress", ethertype="IPv4", protocol="tcp", port_range_min=22, port_range_max=22,
        remote_ip_prefix="0.0.0.0/0", security_group_id="sg")),
    "api-open-v6": (residency.OPEN_RULE_RULE, lambda site: openstack.networking.SecGroupRule(
        "api-open-v6", direction="ingress", ethertype="IPv6", protocol="tcp", port_range_min=443,
        port_range_max=443, remote_ip_prefix="::/0", security_group_id="sg")),
    "server-other-region": (residency.PLACEMENT_RULE, lambda site: openstack.compute.Instance(
        "server-other-region", flavor_name="m1", image_name="debian-12", region="eu-west-1",
        availability_zone=site.infrastructure.openstack_availability_zone)),
    "server-other-zone": (residency.PLACEMENT_RULE, lambda site: openstack.compute.Instance(
        "server-other-zone", flavor_name="m1", image_name="debian-12", region=_region(site),
        availability_zone="az-abroad")),
    "volume-unencrypted": (residency.VOLUME_RULE, lambda site: openstack.blockstorage.Volume(
        "volume-unencrypted", size=100, volume_type="standard", region=_region(site),
        availability_zone=site.infrastructure.openstack_availability_zone)),
    "floating-ip": (residency.FLOATING_IP_RULE, lambda site: openstack.networking.FloatingIp(
        "floating-ip", pool="public")),
}
# Rules that only apply where the stack sets the fact they check (an openstack zone, encryption at rest).
# Elsewhere any OpenStack resource already breaks SOV-RES-ZONE ("no cloud resources"), tested by the rest.
NEEDS = {"server-other-zone": "zone", "volume-unencrypted": "encryption"}


def _applies(site: SiteConfig, case: str) -> bool:
    if NEEDS.get(case) == "zone":
        return bool(site.infrastructure.openstack_availability_zone)
    if NEEDS.get(case) == "encryption":
        return site.residency.encryption_at_rest_required and bool(site.infrastructure.openstack_volume_type)
    return True


CASES = [(stack, case) for stack in STACKS for case in sorted(VIOLATIONS) if _applies(site_of(stack), case)]


@pytest.mark.parametrize(("stack", "case"), CASES)
def test_transform_refuses_crafted_resource(stack, case, body_with):
    site = site_of(stack)
    rule, make = VIOLATIONS[case]
    with pytest.raises(ResidencyError) as refused:
        run_program(stack, body_with(lambda program: make(site)))
    message = str(refused.value)
    assert f"{case!r}" in message, message
    assert rule in message, message


@pytest.mark.parametrize("stack", STACKS)
def test_transform_admits_in_country_resources(stack, body_with):
    """The control case: the same kinds of resource, kept in-country, pass."""
    site = site_of(stack)
    registry = site.residency.container_registry

    def compliant(program):
        k8s.core.v1.Pod("pod-ok", spec={"containers": [{"name": "c", "image": f"{registry}/busybox:1.36"}]})
        k8s.core.v1.Service("svc-ok", spec={"type": "ClusterIP", "ports": [{"port": 443}]})
        if site.infrastructure.provider == "openstack":
            openstack.networking.SecGroupRule("rule-ok", direction="ingress", ethertype="IPv4", protocol="tcp",
                                              port_range_min=22, port_range_max=22,
                                              remote_ip_prefix=site.residency.admin_cidrs[0], security_group_id="sg")

    run = run_program(stack, body_with(compliant))
    expected = {"pod-ok", "svc-ok"} | ({"rule-ok"} if site.infrastructure.provider == "openstack" else set())
    assert {r.name for r in run.mocks.resources} >= expected


def test_a_wrong_assertion_fails_the_run(body_with):
    """The mocks do not swallow failures: an assertion inside an apply that does not hold fails the test."""

    def wrong(program):
        return program.nodes.hosts.apply(lambda hosts: _assert_false(len(hosts) == 0))

    with pytest.raises(AssertionError, match="deliberately wrong"):
        run_program("local", body_with(lambda program: pulumi.export("check", wrong(program))))


def _assert_false(holds: bool) -> None:
    assert holds, "deliberately wrong"


# --- the policy itself --------------------------------------------------------------------------------------


@pytest.fixture
def policy() -> ResidencyPolicy:
    return ResidencyPolicy(site_of("id-sulsel-cloud"))


def test_split_image_form_and_registry_overrides(policy):
    ok = {"values": {"image": {"registry": "harbor.cloud.go.example/sovkit", "repository": "vllm", "tag": "1"},
                     "global": {"imageRegistry": "harbor.cloud.go.example/sovkit"}}}
    assert policy.check("kubernetes:helm.sh/v3:Release", ok) == []
    bad = {"values": {"image": {"registry": "quay.io", "repository": "prometheus/prometheus"},
                      "global": {"imageRegistry": "quay.io"}}}
    found = policy.check("kubernetes:helm.sh/v3:Release", bad)
    assert [v.rule for v in found] == [residency.IMAGE_RULE, residency.IMAGE_RULE]


@pytest.mark.parametrize(("registry", "ok"), [
    ("harbor.cloud.go.example", True), ("harbor.cloud.go.example/sovkit", True),
    ("harbor.cloud.go.example/other", False), ("harbor.cloud.go.example.evil.example", False), ("docker.io", False)])
def test_registry_overrides(policy, registry, ok):
    props = {"values": {"global": {"imageRegistry": registry}}}
    assert (policy.check("kubernetes:helm.sh/v3:Release", props) == []) == ok


def test_secret_wrapped_and_unknown_values(policy):
    from pulumi.runtime import rpc

    wrapped = {"spec": {"containers": [{"image": rpc.wrap_rpc_secret("docker.io/x:1")}]}}
    assert [v.rule for v in policy.check("kubernetes:core/v1:Pod", wrapped)] == [residency.IMAGE_RULE]
    unknown = {"spec": {"containers": [{"image": rpc.UNKNOWN}]}}
    assert policy.check("kubernetes:core/v1:Pod", unknown) == []


def test_ingress_rule_without_prefix_is_open(policy):
    rule = {"direction": "ingress", "ethertype": "IPv4", "securityGroupId": "sg"}
    assert [v.rule for v in policy.check("openstack:networking/secGroupRule:SecGroupRule", rule)] == [
        residency.OPEN_RULE_RULE]
    rule["remoteGroupId"] = "sg"
    assert policy.check("openstack:networking/secGroupRule:SecGroupRule", rule) == []


def test_provider_in_another_region(policy):
    found = policy.check("pulumi:providers:openstack", {"region": "eu-west-1", "cloud": "x"})
    assert [v.rule for v in found] == [residency.PLACEMENT_RULE]


def test_oci_chart_in_registry_is_allowed(policy):
    props = {"chart": "oci://harbor.cloud.go.example/sovkit/charts/kube-prometheus-stack"}
    assert policy.check("kubernetes:helm.sh/v3:Release", props) == []
    props = {"chart": "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack"}
    assert [v.rule for v in policy.check("kubernetes:helm.sh/v3:Release", props)] == [residency.CHART_RULE]


# --- the state backend --------------------------------------------------------------------------------------


def test_backend_unreported_says_so():
    line = check_backend(site_of("za-national-dc"), {})
    assert "PULUMI_BACKEND_URL unset" in line


def test_backend_reported_and_matching():
    site = site_of("za-national-dc")
    line = check_backend(site, {"PULUMI_BACKEND_URL": site.residency.state_backend})
    assert "is the stack's approved backend" in line
    local = site_of("local")
    assert check_backend(local, {"PULUMI_BACKEND_URL": "file://./.sovkit/pulumi-state"})


@pytest.mark.parametrize("url", ["https://api.pulumi.com", "s3://state?endpoint=s3.amazonaws.com",
                                 "s3://pulumi-state?endpoint=objects.dc.gov.example&s3ForcePathStyle=true&x=1"
                                 .replace("pulumi-state", "other-bucket"), "file:///tmp/elsewhere"])
def test_backend_refused(url):
    with pytest.raises(ResidencyError, match=residency.BACKEND_RULE):
        check_backend(site_of("za-national-dc"), {"PULUMI_BACKEND_URL": url})


def test_program_refuses_live_backend_at_start():
    with pytest.raises(ResidencyError, match=r"https://api\.pulumi\.com"):
        run_program("local", environ={"PULUMI_BACKEND_URL": "https://api.pulumi.com"})
