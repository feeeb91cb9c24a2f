"""What a hosts-mode GPU host installs for its driver, decided at validate and rendered for the accelerator role: the
package names of the driver's source (Debian 12's archive or NVIDIA's repository mirrored in-country), pinned to the
stack's driver version; and NVIDIA Fabric Manager on the hosts whose GPUs sit on an NVSwitch board (the catalogue
says which), which only NVIDIA's repository carries."""


import pytest
from pune_variants import PUNE_REPOSITORY, STACKS, pune

from sovkit.config import load_stack
from sovkit.config.catalogue import on_nvswitch_board
from sovkit.config.checks import rocm_inventory
from sovkit.config.vendors import vendor
from sovkit.errors import StackError
from sovkit.render.inventory import render_inventory

PUNE_HOST = "accelerator: {model: L40S-48GB, count: 4}"


@pytest.mark.parametrize(("model", "count", "nvswitch"), [
    ("H100-SXM5-80GB", 8, True), ("H200-SXM-141GB", 8, True), ("A100-SXM4-80GB", 8, True),
    ("H100-SXM5-80GB", 4, False),  # a 4-GPU HGX board links its GPUs directly
    ("H100-PCIE-80GB", 8, False), ("L40S-48GB", 4, False), ("MI300X-192GB", 8, False), (None, 0, False)])
def test_the_catalogue_says_which_hosts_sit_on_an_nvswitch_board(model, count, nvswitch):
    assert on_nvswitch_board(model, count) is nvswitch


def test_a_hosts_mode_nvswitch_site_without_nvidias_repository_is_refused_naming_the_key_and_the_hosts(tmp_path):
    with pytest.raises(StackError) as caught:
        load_stack(pune(tmp_path, (PUNE_HOST, "accelerator: {model: H200-SXM-141GB, count: 8}"),
                        (PUNE_REPOSITORY, "")))
    found = next(p for p in caught.value.problems if p.key_path == "sovereign-ai:aptRepositories.nvidia")
    assert found.found == "nothing, with GPUs on an NVSwitch board at hosts.pune-ai-01 (8x H200-SXM-141GB)"
    assert found.allowed == ("NVIDIA's Debian 12 repository mirrored in-country as aptRepositories.nvidia: NVSwitch "
                             "boards need NVIDIA Fabric Manager at the driver's version, which Debian does not carry")
    assert found.fix.startswith("mirror https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/")


def test_an_nvswitch_site_with_the_repository_passes_and_its_host_gets_fabric_manager_at_the_drivers_version(tmp_path):
    site = load_stack(pune(tmp_path, (PUNE_HOST, "accelerator: {model: H200-SXM-141GB, count: 8}")))
    host = render_inventory(site)["all"]["children"]["gpu_worker"]["hosts"]["pune-ai-01"]
    assert host["accelerator_fabric_manager_packages"] == ["nvidia-fabricmanager-580=580.95.05*"]


def test_the_rke2_site_whose_gpu_nodes_the_kit_installs_has_nvidias_repository_for_fabric_manager():
    """platform.yml runs the accelerator role on an RKE2 site's GPU nodes: Fabric Manager too (8x H100 SXM5)."""
    za = load_stack(STACKS / "Pulumi.za-national-dc.yaml")
    assert za.platform.mode == "kubernetes" and "nvidia" in za.residency.apt_repositories


def test_pune_renders_the_names_of_nvidias_repository_pinned_to_its_driver_and_no_fabric_manager():
    inventory = render_inventory(load_stack(STACKS / "Pulumi.in-mh-pune.yaml"))
    site_vars, host = inventory["all"]["vars"], inventory["all"]["children"]["gpu_worker"]["hosts"]["pune-ai-01"]
    assert site_vars["accelerator_driver_packages"] == {
        "module": ["nvidia-kernel-dkms=580.95.05*"],
        "driver": ["nvidia-driver-cuda=580.95.05*", "nvidia-smi=580.95.05*", "firmware-nvidia-gsp=580.95.05*",
                   "nvidia-persistenced=580.95.05*"]}
    services = ("accelerator_kernel_module", "accelerator_persistence_service", "accelerator_fabric_manager_service")
    assert [site_vars[name] for name in services] == ["nvidia", "nvidia-persistenced", "nvidia-fabricmanager"]
    assert host["accelerator_fabric_manager_packages"] == []


def test_debians_driver_has_its_own_names_and_its_persistence_daemon_is_versioned_apart():
    """Debian 12: libcuda1 is the CUDA driver (no compute-only metapackage), nvidia-persistenced is contrib's own
    535.171.04 beside driver 535.x, so it cannot be pinned to the driver's version."""
    assert vendor("nvidia").driver_install("535.261.03", repository=False) == {
        "module": ["nvidia-kernel-dkms=535.261.03*"],
        "driver": ["libcuda1=535.261.03*", "nvidia-smi=535.261.03*", "firmware-nvidia-gsp=535.261.03*",
                   "nvidia-persistenced"]}
    assert vendor("cpu").driver_install("", repository=False) == {"module": [], "driver": []}


# rocm-smi --showmeminfo vram --csv: a header, then one cardN row per GPU with its total in bytes.
HEADER = "device,VRAM Total Memory (B),VRAM Total Used Memory (B)\n"
TWO_MI300X = HEADER + "card0,205822885888,299687936\ncard1,205822885888,0\n"


def test_rocm_smi_showing_the_counted_gpus_with_the_catalogues_memory_passes():
    warned = "WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status\n\n"
    assert rocm_inventory(warned + TWO_MI300X, model="MI300X-192GB", count="2", memory_mib="196288") == []


def test_rocm_smi_showing_fewer_more_or_other_gpus_or_no_csv_is_refused():
    short = rocm_inventory(TWO_MI300X, model="MI300X-192GB", count=3, memory_mib=196288)
    assert [(f.found, f.allowed) for f in short] == [("2 GPUs", "3 MI300X-192GB GPUs, as the stack counts them")]
    assert rocm_inventory(TWO_MI300X, model="MI300X-192GB", count=1, memory_mib=196288)[0].found == "2 GPUs"
    other = rocm_inventory(HEADER + "card0,205822885888,0\ncard1,68702699520,0\n", model="MI300X-192GB", count=2,
                           memory_mib=196288)
    assert [(f.at, f.found) for f in other] == [("[1]", "card1 with 65520 MiB")]
    assert [f.found for f in rocm_inventory("", model="MI300X-192GB", count=2, memory_mib=196288)] == ["nothing"]
    failed = rocm_inventory("ERROR: GPU[0] : Unable to get memory", model="MI300X-192GB", count=1, memory_mib=196288)
    assert [f.found for f in failed] == ["'ERROR: GPU[0] : Unable to get memory'"]
