"""The hosts' Debian packages come from the roles' own apt tasks: the bundle can never lack one."""

from pathlib import Path

import pytest

from sovkit.render.packages import host_packages, role_apt_packages

ROLES = Path(__file__).resolve().parents[3] / "roles"


def test_every_role_that_installs_is_found_with_its_packages():
    found = role_apt_packages(ROLES)
    assert found["residency_network"] == ("nftables",)
    assert {"nginx", "libnginx-mod-http-js"} <= set(found["gateway"])
    assert {"prometheus", "prometheus-node-exporter"} <= set(found["monitoring"])
    assert "python3-venv" in found["vllm_service"]


def test_gpu_packages_only_for_their_vendor():
    cpu, nvidia = set(host_packages(ROLES, "cpu")), set(host_packages(ROLES, "nvidia"))
    assert "nvidia-smi" not in cpu and "nvidia-smi" in nvidia
    assert not any("{{" in name for name in nvidia)  # the driver branch is the site mirror's to resolve
    assert cpu < nvidia


def test_a_package_name_from_a_variable_outside_vendor_files_is_refused(tmp_path: Path):
    tasks = tmp_path / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("- name: Install\n  ansible.builtin.apt:\n    name: '{{ demo_pkgs }}'\n")
    with pytest.raises(ValueError, match="install only literal package names"):
        role_apt_packages(tmp_path)


def test_removals_and_nested_blocks(tmp_path: Path):
    tasks = tmp_path / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(
        "- name: Remove\n  ansible.builtin.apt:\n    name: '{{ gone }}'\n    state: absent\n"
        "- name: Block\n  block:\n    - name: Inner\n      apt: {name: [chrony, zstd]}\n")
    assert role_apt_packages(tmp_path) == {"demo": ("chrony", "zstd")}
