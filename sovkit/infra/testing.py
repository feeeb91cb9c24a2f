"""Run the Pulumi program of a stack under Pulumi's own mocks, with the config the engine would hand it.

Used by sovkit's tests and bench, and by an integrator's tests of a forked country.

`pulumi up` gives the program every config value as a string (objects and lists as JSON) and names the secret
keys separately; under mocks the SDK reads both from PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS
(pulumi/pulumi#4472), so `stack_environment` renders a stack file exactly that way. The mock monitor does not
run stack transforms itself; `RecordingMocks` runs the registered ones on every resource, as the engine would,
so a resource that breaks residency fails the run here as it would fail `pulumi up`.

An OpenStack stack names the operators' public key by its path on the machine that runs `pulumi up`
(openstackSshPublicKey), which a test machine does not have: `stack_environment` points that key at a test key
file (`fake_key_file`, holding FAKE_SSH_PUBLIC_KEY) instead, so the program reads a real file as it would there.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import ipaddress
import json
import os
import runpy
import shutil
import struct
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.resource import ResourceOptions, ResourceTransformArgs
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from sovkit.config.loader import secret_keys_named
from sovkit.config.schema import PROJECT
from sovkit.config.site import SiteConfig
from sovkit.stacks import STACKS_DIR, project_root, stack_files, stack_name, stack_path

ROOT = project_root(Path(__file__).resolve().parent)

MAIN = ROOT / STACKS_DIR / "__main__.py"
FAKE_KEY_PREFIX = "sk-test-secret-"
FAKE_TOKEN = "kubeconfig-token-must-stay-secret"
FAKE_RANDOM_PREFIX = "random-secret-"
FAKE_PEM_KEY = "-----BEGIN PRIVATE KEY----- fake "
FAKE_PEM_CERT = "-----BEGIN CERTIFICATE----- fake "
MOCK_GATEWAY_ADDRESS = "198.51.100.250"  # what the mocked cluster gives a LoadBalancer or an Ingress
FAKE_KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters: [{{name: default, cluster: {{server: "https://198.51.100.11:6443"}}}}]
users: [{{name: default, user: {{token: {FAKE_TOKEN}}}}}]
"""


# A well-formed ed25519 public key (its 32 key bytes are 0..31): nobody holds the private half.
FAKE_SSH_PUBLIC_KEY = "ssh-ed25519 " + base64.b64encode(
    struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(range(32))).decode() + " sovkit-test"
SSH_KEY_CONFIG = f"{PROJECT}:openstackSshPublicKey"
_KEY_DIR: list[Path] = []


def fake_key_file() -> Path:
    """A file holding FAKE_SSH_PUBLIC_KEY, made once per process and removed when it ends."""
    if not _KEY_DIR:
        folder = Path(tempfile.mkdtemp(prefix="sovkit-test-key-"))
        atexit.register(shutil.rmtree, folder, True)
        (folder / "operators.pub").write_text(FAKE_SSH_PUBLIC_KEY + "\n", encoding="utf-8")
        _KEY_DIR.append(folder)
    return _KEY_DIR[0] / "operators.pub"


def with_test_key(site: SiteConfig) -> SiteConfig:
    """An OpenStack site whose openstackSshPublicKey is the test key file (as `stack_environment` makes it)."""
    if site.infrastructure.openstack_ssh_public_key is None:
        return site
    infra = site.infrastructure.model_copy(update={"openstack_ssh_public_key": str(fake_key_file())})
    return replace(site, infrastructure=infra)


def mock_image_id(name: str) -> str:
    """The id the mocks give the Glance image of this name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"glance-image:{name}"))


def stack_names() -> list[str]:
    return [stack_name(p) for p in stack_files(ROOT)]


def _as_config_string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def stack_environment(stack_file: Path) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """(PULUMI_CONFIG map, secret keys, fake secret values) for a stack file.

    The secrets a stack names with pulumiSecret (tenants' API keys, the model store's credentials) are set by the
    operator with `pulumi config set --secret`, never written in the file; here each gets a fake value, marked secret
    as the engine marks it."""
    document = yaml.safe_load(stack_file.read_text(encoding="utf-8"))
    config = {k: _as_config_string(v) for k, v in document["config"].items()}
    if SSH_KEY_CONFIG in config:  # the operators' key file lies on their machine, not this one
        config[SSH_KEY_CONFIG] = str(fake_key_file())
    secret_values = {f"{PROJECT}:{name}": FAKE_KEY_PREFIX + name for name in secret_keys_named(document["config"])}
    config.update(secret_values)
    return config, sorted(secret_values), secret_values


@dataclass
class Registered:
    type_: str
    name: str
    inputs: dict[str, Any]
    custom: bool

    def plain(self, key: str, default: object = None) -> Any:
        return unwrap(self.inputs.get(key, default))


def unwrap(value: object) -> Any:
    """An input value with the secret wrappers the mock monitor keeps removed."""
    if rpc.is_rpc_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class RecordingMocks(pulumi.runtime.Mocks):
    """Realistic ids and outputs per resource type; every registered stack transform runs on every resource.
    Cinder volumes get UUIDs as ids (the guest sees the first 20 characters as the disk's serial); invokes are
    recorded in `calls`, and a Glance image lookup answers `mock_image_id(name)`."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.transforms: list[Callable] = []
        self._addresses = iter(ipaddress.ip_network("198.51.100.0/24").hosts())

    def register_transform(self, transform: Callable) -> None:
        self.transforms.append(transform)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        for transform in self.transforms:
            transform(ResourceTransformArgs(bool(args.custom), args.typ, args.name, args.inputs, ResourceOptions()))
        self.resources.append(Registered(args.typ, args.name, args.inputs, bool(args.custom)))
        outputs = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "openstack:blockstorage/volume:Volume":
            resource_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"cinder-volume:{args.name}"))
        elif args.typ == "openstack:compute/instance:Instance":
            address = str(next(self._addresses))
            outputs |= {"accessIpV4": address, "networks": [{"name": "sovkit-internal", "fixedIpV4": address,
                                                              "port": f"port-{args.name}"}]}
        elif args.typ == "openstack:networking/floatingIp:FloatingIp":
            outputs["address"] = "203.0.113.200"
        elif args.typ == "command:local:Command":
            outputs["stdout"] = FAKE_KUBECONFIG if args.name.endswith("-kubeconfig") else "PLAY RECAP ok=1 failed=0"
            outputs["stderr"] = ""
        elif args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = FAKE_RANDOM_PREFIX + args.name
        elif args.typ.startswith("kubernetes:helm.sh/"):
            outputs["status"] = {"status": "deployed", "name": args.inputs.get("name")}
        elif args.typ.startswith("tls:index/"):  # PEM-shaped fakes; the private keys' are secret in the SDK's outputs
            outputs |= {"privateKeyPem": f"{FAKE_PEM_KEY}{args.name}", "certPem": f"{FAKE_PEM_CERT}{args.name}",
                        "certRequestPem": f"{FAKE_PEM_CERT}csr-{args.name}"}
        elif (args.typ == "kubernetes:core/v1:Service" and (args.inputs.get("spec") or {}).get("type")
              == "LoadBalancer") or args.typ == "kubernetes:networking.k8s.io/v1:Ingress":
            outputs["status"] = {"loadBalancer": {"ingress": [{"ip": MOCK_GATEWAY_ADDRESS}]}}
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "openstack:images/getImage:getImage":
            return {"id": mock_image_id(args.args["name"]), "name": args.args["name"]}
        return {}

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type_ == type_]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name!r}, found {len(matches)}"
        return matches[0]


@dataclass
class Run:
    """One mocked run of the program: the resources it registered and its resolved outputs."""

    stack: str
    mocks: RecordingMocks
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    result: Any = None
    secret_values: dict[str, str] = field(default_factory=dict)
    monitor: MockMonitor | None = None

    def urns(self) -> list[str]:
        assert self.monitor is not None
        return list(self.monitor.get_registered_resources())


def run_program(stack: str, body: Callable[[], Any] | None = None, config: dict[str, str] | None = None,
                secret_keys: list[str] | None = None, environ: dict[str, str] | None = None,
                mocks: RecordingMocks | None = None) -> Run:
    """Run `body` (default: stacks/__main__.py) as the program of `stack` under mocks; resolve its outputs.
    Pass `mocks` to see what a run that fails registered."""
    if config is None:
        config, secret_keys, secret_values = stack_environment(stack_path(stack, ROOT))
    else:
        secret_values = {}
    saved = {k: os.environ.get(k) for k in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS", *(environ or {}))}
    os.environ["PULUMI_CONFIG"] = json.dumps(config)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys or [])
    os.environ.pop("PULUMI_BACKEND_URL", None)
    os.environ.update(environ or {})
    mocks = mocks if mocks is not None else RecordingMocks()
    run = Run(stack, mocks, secret_values=secret_values)
    # A fresh event loop per run: a failed run leaves registrations queued on its loop, and they must never
    # resume inside the next run.
    asyncio.set_event_loop(asyncio.new_event_loop())
    settings.ROOT.set(None)
    run.monitor = MockMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=run.monitor)
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()  # outputs a failed run left behind belong to its (abandoned) loop

    async def resolve() -> None:
        for name, value in settings.get_root_resource().outputs.items():  # type: ignore[union-attr]
            output = pulumi.Output.from_input(value)
            run.outputs[name] = await output.future()
            if await output.is_secret():
                run.secret_outputs.add(name)

    def program() -> Any:
        if body is None:
            runpy.run_path(str(MAIN), run_name="__main__")
        else:
            run.result = body()
        return resolve()

    try:
        _sync_await(run_pulumi_func(program))
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
    return run


def kubernetes_manifests(mocks: RecordingMocks) -> list[dict]:
    """The Kubernetes objects a run creates, as manifests (apiVersion, kind, metadata, ...), for schema validation
    and scanning; Helm releases and node patches are not objects of their own. Whole numbers come back from the
    engine's wire format as floats; here they are integers again, as the provider sends them."""
    skip = ("kubernetes:helm.sh/", "pulumi:providers:")
    return [_integers(unwrap(r.inputs)) for r in mocks.resources
            if r.custom and r.type_.startswith("kubernetes:") and not r.type_.startswith(skip)
            and not r.type_.endswith("Patch")]


def _integers(value: object) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value
