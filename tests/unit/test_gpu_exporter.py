"""sovkit.gpu_exporter against NVML readings composed from NVML's documented return types, not captured from a GPU
(tests/data/nvml-readings-h100-l40s.json: two H100, one in MIG mode, and an L40S with ECC off), replayed through a
stand-in for the pynvml module that the collector is given.
The stand-in raises pynvml's own NVMLError classes with the readings' return codes; nothing of the real library is
patched. The exposition is checked series by series, and by Prometheus' own promtool."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from prometheus_client.core import CollectorRegistry

from sovkit import gpu_exporter
from sovkit.gpu_exporter import NvmlCollector, exposition

READINGS = Path(__file__).parents[1] / "data" / "nvml-readings-h100-l40s.json"
HOST = "gpu-01"
# The constants and error classes the collector uses, taken from the real bindings so the stand-in cannot drift.
CONSTANTS = ("NVMLError", "NVML_TEMPERATURE_GPU", "NVML_MEMORY_ERROR_TYPE_CORRECTED",
             "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC", "nvmlMemory_v2",
             "nvmlEventTypeXidCriticalError")


@dataclass(frozen=True)
class Handle:
    """A device handle of the stand-in; `alias`: another handle to the same GPU (one the collector never saw)."""

    index: int
    alias: bool = False


class RecordedNvml(SimpleNamespace):
    """Replays a recording as the pynvml module would answer: values, or pynvml.NVMLError(code)."""

    def __init__(self, recording: dict) -> None:
        super().__init__(**{name: getattr(pynvml, name) for name in dir(pynvml)
                            if name.startswith("NVML_ERROR_") or name in CONSTANTS})
        self.devices = recording["devices"]
        self.events = list(recording["events"])
        self.registered: set[int] = set()
        self.calls: list[str] = []
        self.event_waits = threading.Semaphore(0)

    def _answer(self, entry: Any) -> Any:
        if isinstance(entry, dict) and "error" in entry:
            code = getattr(pynvml, entry["error"])
            assert code == entry["code"], f"the recording's {entry['error']} is {entry['code']}, pynvml's {code}"
            raise pynvml.NVMLError(code)
        return entry

    def _device(self, handle: Handle, call: str) -> Any:
        self.calls.append(call)
        return self._answer(self.devices[handle.index][call])

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Handle:
        return Handle(index)

    def nvmlDeviceGetName(self, handle: Handle) -> str:
        return self._device(handle, "nvmlDeviceGetName")

    def nvmlDeviceGetUUID(self, handle: Handle) -> str:
        return self._device(handle, "nvmlDeviceGetUUID")

    def nvmlDeviceGetPciInfo(self, handle: Handle) -> SimpleNamespace:
        info = self._device(handle, "nvmlDeviceGetPciInfo")
        return SimpleNamespace(busId=info["busId"].encode())  # a c_char array: bytes, as pynvml returns it

    def nvmlDeviceGetUtilizationRates(self, handle: Handle) -> SimpleNamespace:
        return SimpleNamespace(**self._device(handle, "nvmlDeviceGetUtilizationRates"))

    def nvmlDeviceGetMemoryInfo(self, handle: Handle, version: int | None = None) -> SimpleNamespace:
        assert version == pynvml.nvmlMemory_v2
        return SimpleNamespace(**self._device(handle, "nvmlDeviceGetMemoryInfo_v2"))

    def nvmlDeviceGetTemperature(self, handle: Handle, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._answer(self._device(handle, "nvmlDeviceGetTemperature")["NVML_TEMPERATURE_GPU"])

    def nvmlDeviceGetPowerUsage(self, handle: Handle) -> int:
        return self._device(handle, "nvmlDeviceGetPowerUsage")

    def nvmlDeviceGetTotalEccErrors(self, handle: Handle, error_type: int, counter_type: int) -> int:
        kind = {pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED: "NVML_MEMORY_ERROR_TYPE_CORRECTED",
                pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED: "NVML_MEMORY_ERROR_TYPE_UNCORRECTED"}[error_type]
        assert counter_type == pynvml.NVML_VOLATILE_ECC
        return self._answer(self._device(handle, "nvmlDeviceGetTotalEccErrors")[f"{kind},NVML_VOLATILE_ECC"])

    def nvmlEventSetCreate(self) -> str:
        return "event-set"

    def nvmlDeviceRegisterEvents(self, handle: Handle, event_types: int, event_set: str) -> None:
        assert event_types == pynvml.nvmlEventTypeXidCriticalError and event_set == "event-set"
        self._answer(self._device(handle, "nvmlDeviceRegisterEvents")["nvmlEventTypeXidCriticalError"])
        self.registered.add(handle.index)

    def nvmlEventSetWait_v2(self, event_set: str, timeout_ms: int) -> SimpleNamespace:
        self.event_waits.release()
        if not self.events:
            time.sleep(min(timeout_ms, 20) / 1000)
            raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)
        event = self.events.pop(0)
        assert event["device"] in self.registered
        return SimpleNamespace(device=Handle(event["device"], event.get("alias", False)),
                               eventType=getattr(pynvml, event["eventType"]), eventData=event["eventData"])

    def nvmlEventSetFree(self, event_set: str) -> None:
        self.events = []


def labels(gpu: int) -> dict[str, str]:
    device = json.loads(READINGS.read_text())["devices"][gpu]
    return {"gpu": str(gpu), "UUID": device["nvmlDeviceGetUUID"], "pci_bus_id": device["nvmlDeviceGetPciInfo"]["busId"],
            "device": f"nvidia{gpu}", "modelName": device["nvmlDeviceGetName"], "Hostname": HOST}


def key(name: str, gpu: int, **extra: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple((labels(gpu) | extra).items())


# What the recording must become: every series, its labels in dcgm-exporter's order, and its value in DCGM's units.
EXPECTED = {
    key("DCGM_FI_DEV_GPU_UTIL", 0): 87.0,
    key("DCGM_FI_DEV_GPU_UTIL", 2): 12.0,  # gpu 1 is in MIG mode: NVML does not give its utilisation
    key("DCGM_FI_DEV_FB_FREE", 0): 7102.0,  # MiB, whole, as DCGM reports them (7102.5 MiB free)
    key("DCGM_FI_DEV_FB_FREE", 1): 41019.0,
    key("DCGM_FI_DEV_FB_FREE", 2): 43627.0,
    key("DCGM_FI_DEV_FB_USED", 0): 74127.0,
    key("DCGM_FI_DEV_FB_USED", 1): 40211.0,
    key("DCGM_FI_DEV_FB_USED", 2): 1873.0,
    key("DCGM_FI_DEV_GPU_TEMP", 0): 61.0,
    key("DCGM_FI_DEV_GPU_TEMP", 1): 44.0,
    key("DCGM_FI_DEV_GPU_TEMP", 2): 38.0,
    key("DCGM_FI_DEV_POWER_USAGE", 0): 512.347,  # W, from NVML's milliwatts
    key("DCGM_FI_DEV_POWER_USAGE", 1): 143.519,
    key("DCGM_FI_DEV_POWER_USAGE", 2): 78.012,
    key("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", 0): 0.0,
    key("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", 1): 3.0,  # the L40S has ECC off: no ECC series at all
    key("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 0): 0.0,
    key("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 1): 1.0,
    key("DCGM_FI_DEV_XID_ERRORS", 0, err_code="0"): 0.0,  # no Xid yet: 0, as DCGM shows it
    key("DCGM_FI_DEV_XID_ERRORS", 1, err_code="0"): 0.0,
    key("DCGM_FI_DEV_XID_ERRORS", 2, err_code="0"): 0.0,
}
TYPES = {"DCGM_FI_DEV_GPU_UTIL": "gauge", "DCGM_FI_DEV_FB_FREE": "gauge", "DCGM_FI_DEV_FB_USED": "gauge",
         "DCGM_FI_DEV_GPU_TEMP": "gauge", "DCGM_FI_DEV_POWER_USAGE": "gauge",
         "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": "counter", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "counter",
         "DCGM_FI_DEV_XID_ERRORS": "gauge"}


@pytest.fixture
def nvml() -> RecordedNvml:
    return RecordedNvml(json.loads(READINGS.read_text()))


@pytest.fixture
def collector(nvml):
    collector = NvmlCollector(nvml, HOST)
    yield collector
    collector.xid.stop()


def scrape(collector: NvmlCollector) -> dict:
    return {(s.name, tuple(s.labels.items())): s.value for family in collector.collect() for s in family.samples}


def test_every_series_label_and_value(collector):
    assert scrape(collector) == EXPECTED
    assert {f.name: f.type for f in collector.collect()} == TYPES


def test_unsupported_values_are_left_out_not_zero(collector):
    series = scrape(collector)
    assert not [k for k in series if k[0] == "DCGM_FI_DEV_GPU_UTIL" and dict(k[1])["gpu"] == "1"]
    assert not [k for k in series if k[0].startswith("DCGM_FI_DEV_ECC_") and dict(k[1])["gpu"] == "2"]
    assert not [k for k in series if k[0] == gpu_exporter.NVML_ERRORS]  # NOT_SUPPORTED is no error


def test_each_scrape_reads_nvml_afresh(collector, nvml):
    scrape(collector)
    nvml.devices[0]["nvmlDeviceGetTemperature"]["NVML_TEMPERATURE_GPU"] = 90
    nvml.calls.clear()
    assert scrape(collector)[key("DCGM_FI_DEV_GPU_TEMP", 0)] == 90.0
    assert nvml.calls.count("nvmlDeviceGetTemperature") == 3


def test_an_xid_event_shows_up_as_the_last_xid_of_its_gpu(collector):
    assert collector.xid.wait_once(timeout_ms=10) is True
    series = scrape(collector)
    assert series[key("DCGM_FI_DEV_XID_ERRORS", 1, err_code="94")] == 94.0
    assert key("DCGM_FI_DEV_XID_ERRORS", 1, err_code="0") not in series
    assert series[key("DCGM_FI_DEV_XID_ERRORS", 0, err_code="0")] == 0.0
    assert collector.xid.wait_once(timeout_ms=10) is False  # a timeout: nothing more happened
    assert scrape(collector) == series  # the last Xid stays, as DCGM keeps it


def test_an_xid_from_a_handle_not_seen_before_is_placed_by_the_gpus_uuid(collector, nvml):
    nvml.events = [{"device": 2, "alias": True, "eventType": "nvmlEventTypeXidCriticalError", "eventData": 13}]
    assert collector.xid.wait_once(timeout_ms=10) is True
    assert scrape(collector)[key("DCGM_FI_DEV_XID_ERRORS", 2, err_code="13")] == 13.0


def test_an_xid_from_a_gpu_that_answers_nothing_more_is_counted_as_an_error(collector, nvml):
    nvml.events = [{"device": 2, "alias": True, "eventType": "nvmlEventTypeXidCriticalError", "eventData": 79}]
    nvml.devices[2]["nvmlDeviceGetUUID"] = {"error": "NVML_ERROR_GPU_IS_LOST", "code": 15}
    assert collector.xid.wait_once(timeout_ms=10) is False
    series = scrape(collector)
    assert series[(gpu_exporter.NVML_ERRORS, (("gpu", "all"), ("call", "nvmlDeviceGetUUID"),
                                              ("error", "NVML_ERROR_GPU_IS_LOST")))] == 1.0


def test_the_xid_thread_reads_events(collector, nvml):
    collector.xid.start()
    deadline = time.monotonic() + 10
    while key("DCGM_FI_DEV_XID_ERRORS", 1, err_code="94") not in scrape(collector):
        assert time.monotonic() < deadline, "the Xid thread did not record the readings' Xid 94"
        nvml.event_waits.acquire(timeout=1)
    collector.xid.stop()
    assert collector.xid._thread is not None and not collector.xid._thread.is_alive()


def test_a_gpu_that_cannot_register_xid_events_has_no_xid_series(nvml):
    nvml.devices[2]["nvmlDeviceRegisterEvents"]["nvmlEventTypeXidCriticalError"] = {
        "error": "NVML_ERROR_NOT_SUPPORTED", "code": 3}
    collector = NvmlCollector(nvml, HOST)
    series = scrape(collector)
    assert [dict(k[1])["gpu"] for k in series if k[0] == "DCGM_FI_DEV_XID_ERRORS"] == ["0", "1"]
    assert gpu_exporter.NVML_ERRORS not in {k[0] for k in series}


def test_other_nvml_errors_leave_the_value_out_and_are_counted(nvml):
    nvml.devices[0]["nvmlDeviceGetPowerUsage"] = {"error": "NVML_ERROR_GPU_IS_LOST", "code": 15}
    collector = NvmlCollector(nvml, HOST, watch_xid=False)
    scrape(collector)
    series = scrape(collector)
    assert key("DCGM_FI_DEV_POWER_USAGE", 0) not in series
    error = (gpu_exporter.NVML_ERRORS,
             (("gpu", "0"), ("call", "nvmlDeviceGetPowerUsage"), ("error", "NVML_ERROR_GPU_IS_LOST")))
    assert series[error] == 2.0
    assert not [k for k in series if k[0] == "DCGM_FI_DEV_XID_ERRORS"]


def exposed(collector: NvmlCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return exposition(registry).decode()


def test_exposition_names_each_family_as_dcgm_exporter_does(collector):
    text = exposed(collector)
    assert "# TYPE DCGM_FI_DEV_ECC_DBE_VOL_TOTAL counter\n" in text
    assert "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n" in text
    assert ('DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-5b4f7a3e-0c1d-4e2f-9a8b-1c2d3e4f5a60",'
            'pci_bus_id="00000000:18:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="gpu-01"} 87.0'
            in text.splitlines())
    assert "_total" not in text  # prometheus_client's own encoder would add it to the counters' TYPE lines


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian package prometheus)")
def test_promtool_accepts_the_exposition(collector, tmp_path):
    """promtool parses it; what it lints is only what dcgm-exporter's own names and labels carry (camelCase labels
    modelName and Hostname, counters named ..._TOTAL rather than ..._total): NVIDIA's dashboards need exactly those."""
    collector.xid.wait_once(timeout_ms=10)
    text = exposed(collector)
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=60, check=False)
    problems = set((result.stdout + result.stderr).strip().splitlines())
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    inherent = {f"{name} label names should be written in 'snake_case' not 'camelCase'" for name in families}
    inherent |= {f'{name} counter metrics should have "_total" suffix' for name in families if name.endswith("_TOTAL")}
    assert result.returncode in (0, 3), problems  # 3: lint findings only; 1 would be a parse error
    assert problems <= inherent, problems - inherent


def test_served_over_http(collector):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    httpd = gpu_exporter.server(registry, "127.0.0.1:0")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            body = response.read().decode()
        assert body == exposed(collector)
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("listen", ["9400", "localhost", ":9400"])
def test_a_bad_listen_address_is_refused(listen):
    with pytest.raises(ValueError, match="HOST:PORT"):
        gpu_exporter.server(CollectorRegistry(), listen)


def test_the_exporter_stands_alone():
    """It runs on GPU hosts from the bundle's wheels: it imports nothing else of sovkit."""
    tree = ast.parse(Path(gpu_exporter.__file__).read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not [n for n in names if n == "sovkit" or n.startswith("sovkit.")]


def test_the_exporter_runs_alone_from_the_runtime_venv_on_dcgm_exporters_port():
    """On the GPU hosts it is one file run by the runtime's Python: it may import only the standard library and the
    distributions its vendor file names (the lock pins them), and it listens where Prometheus is told to scrape."""
    from sovkit import ports

    tree = ast.parse(Path(gpu_exporter.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"prometheus_client", "pynvml"}
    assert gpu_exporter.DEFAULT_LISTEN.rsplit(":", 1)[1] == str(ports.GPU_EXPORTER)
