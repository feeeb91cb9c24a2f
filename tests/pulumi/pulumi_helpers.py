"""Stack configs the Pulumi tests share (imported by name: test folders are not packages)."""

from __future__ import annotations

import json


def openstack_in_hosts_mode(config: dict[str, str]) -> dict[str, str]:
    """The shipped OpenStack site's config in hosts mode: its GPU workers only (hosts mode serves at most four
    nodes), no RKE2, and its models as hosts mode serves them: from an https store, proven by their SHA256SUMS
    digests, one replica on every GPU worker. Its workers carry NVIDIA L40S GPUs with driver 580 from the cloud's
    mirror of NVIDIA's repository: hosts mode serves AMD only once a site writes an AMD lock from its mirror of
    AMD's wheel index."""
    config = dict(config)
    groups = json.loads(config.pop("sovereign-ai:openstackNodeGroups"))
    del groups["control_plane"]
    del config["sovereign-ai:rke2Version"]
    for key in ("rke2ChecksumsSha256", "rke2Artifacts", "rke2ApiAddress", "rke2ArtifactsFolder",  # no RKE2
                "etcdSnapshotCredentials",
                "gatewayExposure", "gatewayHostname", "modelStoreLinkMbps", "modelStoreCredentials"):  # the cluster's
        config.pop(f"sovereign-ai:{key}", None)
    del config["sovereign-ai:acceleratorToolkitVersion"]  # hosts mode: the runtime lock brings CUDA
    groups["gpu_worker"] |= {"flavor": "g.l40sx4", "accelerator": {"model": "L40S-48GB", "count": 4}}
    nvidia = {"url": "https://mirror.cloud.go.example/nvidia-cuda/debian12/x86_64",
              "signingKey": "/etc/sovkit/keys/nvidia-cuda-archive.asc"}
    config |= {"sovereign-ai:accelerator": "nvidia", "sovereign-ai:acceleratorDriverVersion": "580.95.05",
               "sovereign-ai:aptRepositories": json.dumps({"nvidia": nvidia})}
    store = "https://object.cloud.go.example/models"
    models = json.loads(config["sovereign-ai:models"])
    for i, model in enumerate(models.values()):
        model["source"] = f"{store}/{model['source'].rsplit('/', 1)[1]}"
        model["revision"] = f"sha256:{i:064x}"
        model["replicas"] = groups["gpu_worker"]["count"]  # hosts mode: one replica on every node of the role
    return config | {"sovereign-ai:mode": "hosts", "sovereign-ai:openstackNodeGroups": json.dumps(groups),
                     "sovereign-ai:modelStore": store, "sovereign-ai:models": json.dumps(models)}
