"""The accelerator vendors the kit knows, one data file each under sovkit/data/vendors/: where the Debian packages
come from, the variable and device nodes that give a process its GPUs, the quantizations vLLM serves on each
generation (vLLM's own support table) and the arguments that select them, what the hosts-mode serving runtime is
resolved from, and which driver branches run it. Adding a vendor is its file and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from sovkit.data import load_yaml, names_in

RENDER_NODE_BASE = 128  # /dev/dri/renderD128 is the first GPU's render node


@dataclass(frozen=True)
class DeviceChart:
    """Kubernetes mode: the vendor's chart that makes its GPUs schedulable (device plugin, and what comes with it)."""

    chart: str
    version: str  # pinned; the offline bundle lists it for the in-country chart mirror
    namespace: str
    values: dict
    images: dict[str, str]  # value path whose `repository` moves to the in-country registry -> path under it
    rke2_values: dict = field(default_factory=dict)  # merged over values on a cluster sovkit made (RKE2)


@dataclass(frozen=True)
class Vendor:
    name: str
    title: str
    debian_components: tuple[str, ...]  # archive components the site's hosts need from the in-country mirror
    generations: dict[str, str]  # generation -> what identifies it (compute capability, gfx target, CPU flags)
    quantizations: dict[str, tuple[str, ...]]  # stack quantization -> generations vLLM serves it on
    quantization_methods: dict[str, str] = field(default_factory=dict)  # stack quantization -> vLLM --quantization
    device_env: str | None = None  # the variable naming the devices a process may use
    device_nodes_each: str | None = None  # a device's own node; {index} (GPU index) or {render} (render node)
    device_nodes_shared: tuple[str, ...] = ()  # nodes every process of this vendor opens
    kubernetes_resource: str | None = None  # the device plugin's resource name
    hosts_metrics_exporter: str | None = None  # hosts mode: the exporter (a file of the sovkit package) it runs
    metrics_exporter_requires: tuple[str, ...] = ()  # what that exporter imports: the runtime lock pins them
    runtime_requirements: tuple[str, ...] = ()  # what the runtime lock is resolved from (scripts/lock-runtime.py)
    runtime_without: tuple[str, ...] = ()  # packages the resolution names that the lock leaves out
    runtime_index: str | None = None  # where the runtime's wheels come from when it is not PyPI
    device_runtime_name: str | None = None  # the device runtime the lock's wheels are built on (CUDA, ROCm, CANN)
    device_runtime_package: str | None = None  # the lock's pin whose version is that runtime's release
    driver_minimum_branch: dict[int, int] = field(default_factory=dict)  # runtime major release -> oldest driver
    debian_driver_branch: int | None = None  # the driver branch Debian 12 carries
    driver_repository: str | None = None  # the vendor's own repository, for a site to mirror in-country
    driver_epoch: int | None = None  # the epoch the vendor's packages carry before the driver's release (AMD: 1)
    # What a serving host installs, by source ("debian": Debian 12's archive, "repository": the vendor's own):
    # kind ("module": the DKMS source built for the running kernel, "pinned": versioned with the driver, "unpinned":
    # versioned apart from it) -> package names.
    driver_packages: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    kernel_module: str | None = None  # what modprobe loads
    persistence_service: str | None = None  # the daemon that keeps the GPUs initialised between processes
    fabric_manager_package: str | None = None  # NVSwitch boards: its package, {branch} being the driver's branch
    fabric_manager_service: str | None = None
    kubernetes_device_chart: DeviceChart | None = None  # kubernetes mode: GPU Operator, device plugin

    def serves(self, quantization: str, generation: str | None) -> bool:
        """vLLM has kernels for `quantization` on accelerators of `generation`."""
        return generation in self.quantizations.get(quantization, ())

    def driver_install(self, version: str, *, repository: bool) -> dict[str, list[str]]:
        """The apt requests for a serving host's driver at `version` (a release or a branch), from the vendor's
        repository or Debian's archive: "module" (the DKMS source, built for the running kernel) and "driver" (the
        rest), each pinned to `version` where its source versions it with the driver."""
        packages = self.driver_packages.get("repository" if repository else "debian", {})
        pin = f"{self.driver_epoch}:{version}" if self.driver_epoch is not None and repository else version
        module = [f"{name}={pin}*" for name in packages.get("module", ())]
        driver = [f"{name}={pin}*" for name in packages.get("pinned", ())]
        return {"module": module, "driver": driver + list(packages.get("unpinned", ()))}

    def fabric_manager_install(self, version: str, branch: int) -> list[str]:
        """The apt request for Fabric Manager, which must match the driver exactly: its branch's package at
        `version`."""
        if not self.fabric_manager_package:
            return []
        return [f"{self.fabric_manager_package.format(branch=branch)}={version}*"]

    def device_nodes(self, indices: tuple[int, ...]) -> list[str]:
        """The device nodes a process using the GPUs `indices` opens (each GPU's own, then the shared ones)."""
        if not self.device_nodes_each:
            return []
        own = [self.device_nodes_each.format(index=i, render=RENDER_NODE_BASE + i) for i in indices]
        return [*own, *self.device_nodes_shared]


@cache
def vendor(name: str) -> Vendor:
    data = load_yaml(f"vendors/{name}.yaml")
    assert isinstance(data, dict) and data.get("vendor") == name, f"sovkit/data/vendors/{name}.yaml names {name}"
    nodes = data.get("device_nodes") or {}
    runtime = data.get("runtime") or {}
    device_runtime = runtime.get("device_runtime") or {}
    driver = data.get("driver") or {}
    fabric_manager = driver.get("fabric_manager") or {}
    exporter = data.get("metrics_exporter") or {}
    return Vendor(
        name=name, title=data["title"], debian_components=tuple(data["debian_components"]),
        generations=dict(data.get("generations") or {}),
        quantizations={q: tuple(g) for q, g in (data.get("quantizations") or {}).items()},
        quantization_methods=dict(data.get("quantization_methods") or {}),
        device_env=data.get("device_env"), device_nodes_each=nodes.get("each"),
        device_nodes_shared=tuple(nodes.get("shared") or ()), kubernetes_resource=data.get("kubernetes_resource"),
        hosts_metrics_exporter=exporter.get("hosts"), metrics_exporter_requires=tuple(exporter.get("requires") or ()),
        runtime_requirements=tuple(runtime.get("requirements") or ()),
        runtime_without=tuple(runtime.get("without") or ()), runtime_index=runtime.get("index"),
        device_runtime_name=device_runtime.get("name"), device_runtime_package=device_runtime.get("package"),
        driver_minimum_branch={int(k): int(v) for k, v in (driver.get("minimum_branch") or {}).items()},
        debian_driver_branch=driver.get("debian_branch"), driver_repository=driver.get("repository"),
        driver_epoch=driver.get("epoch"),
        driver_packages={source: {kind: tuple(names) for kind, names in kinds.items()}
                         for source, kinds in (driver.get("packages") or {}).items()},
        kernel_module=driver.get("kernel_module"), persistence_service=driver.get("persistence_service"),
        fabric_manager_package=fabric_manager.get("package"), fabric_manager_service=fabric_manager.get("service"),
        kubernetes_device_chart=DeviceChart(**chart) if (chart := data.get("kubernetes_device_chart")) else None)


def vendor_names() -> list[str]:
    return names_in("vendors")
