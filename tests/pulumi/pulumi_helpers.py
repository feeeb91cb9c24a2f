"""Stack configs the Pulumi tests share (imported by name: test folders are not packages)."""

from __future__ import annotations

import json


def openstack_in_hosts_mode(config: dict[str, str]) -> dict[str, str]:
    """The shipped OpenStack site's config in hosts mode: its GPU workers only (hosts mode serves at most four
    nodes), no RKE2, and its models as hosts mode serves them: from an https store, proven by their SHA256SUMS
    digests, one replica on every GPU worker."""
    config = dict(config)
    groups = json.loads(config.pop("sovereign-ai:openstackNodeGroups"))
    del groups["control_plane"]
    del config["sovereign-ai:rke2Version"]
    store = "https://object.cloud.go.example/models"
    models = json.loads(config["sovereign-ai:models"])
    for i, model in enumerate(models.values()):
        model["source"] = f"{store}/{model['source'].rsplit('/', 1)[1]}"
        model["revision"] = f"sha256:{i:064x}"
        model["replicas"] = groups["gpu_worker"]["count"]  # hosts mode: one replica on every node of the role
    return config | {"sovereign-ai:mode": "hosts", "sovereign-ai:openstackNodeGroups": json.dumps(groups),
                     "sovereign-ai:modelStore": store, "sovereign-ai:models": json.dumps(models)}
