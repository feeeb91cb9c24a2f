"""The chart values of a site: `render_values(site)` is what `sovkit values STACK` prints and what Pulumi
installs charts/sovkit-serving with. Every model's arguments come from the one vLLM renderer."""

from __future__ import annotations

import math
import posixpath
import re

import yaml

from sovkit.config.planner import ModelPlan
from sovkit.config.schema import ModelSpec
from sovkit.config.signers import signature_location, signer_file
from sovkit.config.site import SiteConfig
from sovkit.config.vendors import vendor
from sovkit.render.cluster import role_selector, start_budget_s
from sovkit.render.vllm_args import MODEL_ROOT, PORT, render_vllm

EXISTING_CLAIM = "sovkit-models"  # path stores: the PVC the platform creates over the store's export
CREDENTIALS_SECRET = "sovkit-model-store"  # S3 stores: the Secret the platform writes the stack's credentials to
CPU_CORES_PER_GPU = 4  # host cores requested per GPU (tokenisation, scheduling, the API server)
HOST_MEMORY_GIB = 16  # host RAM per pod besides the weights it stages while loading
CPU_SITE_CORES = 8  # cores a CPU-only replica requests


def api_key_secret(served_name: str) -> dict[str, str]:
    """The Secret holding the key the gateway presents to this model (created by the platform, never a value)."""
    return {"name": f"sovkit-vllm-{served_name}", "key": "api-key"}


def split_source(source: str) -> tuple[str, str]:
    """(source for the fetcher, S3 endpoint): s3://HOST/BUCKET/PATH -> (s3://BUCKET/PATH, https://HOST)."""
    match = re.match(r"^s3://([^/]+)/(.+)$", source)
    if match and "." in match.group(1):
        return f"s3://{match.group(2)}", f"https://{match.group(1)}"
    return source, ""


def signed(spec: ModelSpec, store: str, path_store: bool) -> dict[str, str]:
    """A signed model's `signature` (where the fetcher gets it in the store, or its path in the store's claim, which
    is mounted at /models) and `signer` (the PEM the site trusts, as text: public material, into a ConfigMap);
    nothing for a model proven by its revision alone. The chart's verify-model init container reads both."""
    location = signature_location(spec)
    if location is None or spec.signer is None:
        return {}
    if path_store:
        signature = posixpath.join(MODEL_ROOT, posixpath.relpath(location, store))
    else:
        signature = split_source(location)[0]
    try:
        signer = signer_file(spec.signer).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        signer = ""  # validate has refused it (sovkit.config.signers); the chart's schema refuses it too
    return {"signature": signature, "signer": signer}


def _gpu_resource(vendor_name: str) -> str:
    """The device plugin's resource name for the vendor's GPUs (sovkit/data/vendors/)."""
    return vendor(vendor_name).kubernetes_resource or ""


def _resources(vendor: str, plan: ModelPlan) -> dict:
    if vendor == "cpu":
        memory = f"{math.ceil(plan.memory_gib)}Gi"
        return {"requests": {"cpu": str(CPU_SITE_CORES), "memory": memory}, "limits": {"memory": memory}}
    gpus = plan.tensor_parallel
    memory = f"{math.ceil(plan.weights_gib / plan.pipeline_parallel) + HOST_MEMORY_GIB}Gi"
    return {
        "requests": {"cpu": str(CPU_CORES_PER_GPU * gpus), "memory": memory, _gpu_resource(vendor): gpus},
        "limits": {"memory": memory, _gpu_resource(vendor): gpus},
    }


def render_values(site: SiteConfig) -> dict:
    """Values of charts/sovkit-serving for the site. Raises vllm_args.PlanError for a model that does not fit."""
    vendor = site.accelerator.accelerator
    store = site.residency.model_store
    path_store = not re.match(r"^(s3|https?)://", store)
    endpoint = ""
    models = {}
    for served, spec in site.serving.models.items():
        launch = render_vllm(site, served, host="0.0.0.0", port=PORT)  # pods listen on their own address
        plan = launch.plan
        signature = signed(spec, store, path_store)
        source, endpoint_of = split_source(spec.source)
        endpoint = endpoint or endpoint_of
        model: dict = {
            "catalogue": spec.catalogue,
            "source": source,
            "revision": spec.revision,
            "replicas": spec.replicas,
            "nodesPerReplica": plan.pipeline_parallel,
            "gpusPerNode": plan.gpus_per_replica // plan.pipeline_parallel if vendor != "cpu" else 0,
            "args": launch.args,
            "env": launch.env,
            "resources": _resources(vendor, plan),
            "weightsSizeLimit": f"{math.ceil(plan.weights_gib * 1.1) + 1}Gi",
            "apiKeySecret": api_key_secret(served),
            "nodeSelector": role_selector(site, plan.node_role),
            # fetched over the stated link, verified if signed, and loaded before /health answers (the Helm wait
            # derives from it)
            "startupSeconds": start_budget_s(plan.weights_gib, site.platform.model_store_link_mbps,
                                             verified=bool(signature)),
        }
        model.update(signature)
        if vendor != "cpu":
            model["tolerations"] = [{"key": _gpu_resource(vendor), "operator": "Exists", "effect": "NoSchedule"}]
        models[served] = model
    monitoring = {
        "serviceMonitor": {"enabled": True, "labels": {"release": "sovkit-monitoring"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "sovkit-monitoring"}},
        "dashboard": {"enabled": True},
    }
    return {
        "accelerator": vendor,
        "imageRegistry": site.residency.container_registry,
        "modelStore": {
            "existingClaim": EXISTING_CLAIM if path_store else "",
            "s3Endpoint": endpoint,
            "credentialsSecret": CREDENTIALS_SECRET if site.residency.model_store_credentials else "",
            "cidrs": list(site.residency.in_country_cidrs),
            "ports": [443],
        },
        "models": models,
        "monitoring": monitoring,
    }


class _IndentedDumper(yaml.SafeDumper):
    """Lists indented under their key, as yamllint's default style wants."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    """Multi-line text (a signer's PEM) as a literal block, as it reads in the file it came from."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_IndentedDumper.add_representer(str, _text)


def dump_values(values: dict) -> str:
    return yaml.dump(values, Dumper=_IndentedDumper, sort_keys=False, width=1000, allow_unicode=True)
