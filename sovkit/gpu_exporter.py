"""GPU metrics for Prometheus under NVIDIA's DCGM exporter's names, read from NVML, for hosts-mode GPU servers.

    python -m sovkit.gpu_exporter [--listen 127.0.0.1:9400] [--hostname NAME]

DCGM exporter needs NVIDIA's datacenter stack (the DCGM host engine), which a hosts-mode site does not install, so
this small exporter reads NVML (through `pynvml`, from the PyPI distribution nvidia-ml-py) and serves the same
series under the same names, labels, types and units, so that NVIDIA's published Grafana dashboards and the serving
chart's GPU alerts work unchanged in both modes. Each scrape reads NVML afresh (a custom prometheus_client
Collector); Xid errors arrive through NVML's event API and are read by a thread, which keeps the last Xid per GPU
as DCGM does.

A value a GPU does not support (NVML_ERROR_NOT_SUPPORTED: utilisation on a MIG-enabled GPU, ECC counters with ECC
mode off) is left out, never reported as 0. Any other NVML error also leaves the value out, and is counted in
sovkit_gpu_exporter_nvml_errors_total{gpu,call,error}.

This module runs on the GPU hosts from the offline bundle's wheels (nvidia-ml-py, prometheus-client): it imports
nothing else of sovkit.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

LOG = logging.getLogger("sovkit.gpu_exporter")
DEFAULT_LISTEN = "127.0.0.1:9400"  # DCGM exporter's port
MIB = 1024 * 1024
# How long the Xid thread waits on NVML's event set before it looks whether it should stop.
XID_WAIT_MS = 1000
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Names, types, units and help texts as dcgm-exporter's default counters file has them: NVIDIA/dcgm-exporter,
# etc/default-counters.csv (checked at release 4.5.3-4.8.2, commit 691c927, and at main, d5e5f51). The file lists
# the ECC counters commented out (not collected by default); their names, type and help are the ones it gives.
#   DCGM_FI_DEV_GPU_UTIL           gauge    GPU utilization (in %).
#   DCGM_FI_DEV_FB_FREE            gauge    Framebuffer memory free (in MiB).
#   DCGM_FI_DEV_FB_USED            gauge    Framebuffer memory used (in MiB).
#   DCGM_FI_DEV_GPU_TEMP           gauge    GPU temperature (in C).
#   DCGM_FI_DEV_POWER_USAGE        gauge    Power draw (in W).
#   DCGM_FI_DEV_ECC_SBE_VOL_TOTAL  counter  Total number of single-bit volatile ECC errors.
#   DCGM_FI_DEV_ECC_DBE_VOL_TOTAL  counter  Total number of double-bit volatile ECC errors.
#   DCGM_FI_DEV_XID_ERRORS         gauge    Value of the last XID error encountered.
# Labels as dcgm-exporter renders them (internal/pkg/rendermetrics/render_metrics.go and
# internal/pkg/collector/gpu_collector.go at 4.5.3-4.8.2): gpu (the index), UUID, pci_bus_id, device ("nvidia" and
# the index), modelName, Hostname; DCGM_FI_DEV_XID_ERRORS adds err_code (the Xid). dcgm-exporter's main branch
# renamed Hostname to hostname after that release (#655); this follows the released name.
GPU_UTIL = ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).")
FB_FREE = ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).")
FB_USED = ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).")
GPU_TEMP = ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).")
POWER_USAGE = ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).")
ECC_SBE_VOL_TOTAL = ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "counter", "Total number of single-bit volatile ECC errors.")
ECC_DBE_VOL_TOTAL = ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors.")
XID_ERRORS = ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.")
FIELDS = (GPU_UTIL, FB_FREE, FB_USED, GPU_TEMP, POWER_USAGE, ECC_SBE_VOL_TOTAL, ECC_DBE_VOL_TOTAL)
NVML_ERRORS = "sovkit_gpu_exporter_nvml_errors_total"


class NvmlErrors:
    """NVML errors other than NOT_SUPPORTED, by (gpu, call, error name): a value left out for a reason to look at."""

    def __init__(self, nvml: Any) -> None:
        self._names = {getattr(nvml, n): n for n in dir(nvml) if n.startswith("NVML_ERROR_")}
        self._counts: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, gpu: str, call: str, code: int) -> None:
        name = self._names.get(code, f"NVML_ERROR_{code}")
        key = (gpu, call, name)
        with self._lock:
            first = key not in self._counts
            self._counts[key] = self._counts.get(key, 0) + 1
        if first:
            LOG.warning("GPU %s: %s failed with %s; the value is left out", gpu, call, name)

    def family(self) -> Metric:
        metric = Metric(NVML_ERRORS, "NVML calls that failed other than as not supported, by GPU, call and error.",
                        "counter")
        with self._lock:
            for (gpu, call, error), count in sorted(self._counts.items()):
                metric.add_sample(NVML_ERRORS, {"gpu": gpu, "call": call, "error": error}, count)
        return metric


@dataclass
class Gpu:
    """One GPU as NVML names it, with the labels dcgm-exporter gives its series (in dcgm-exporter's order)."""

    index: int
    handle: Any
    uuid: str
    labels: dict[str, str]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _handle_key(handle: Any) -> Any:
    """What identifies a device handle: the address a pynvml handle (a ctypes pointer, which compares by identity)
    points at, the same in an event's data as from nvmlDeviceGetHandleByIndex; any other handle is its own key."""
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value or handle
    except (ctypes.ArgumentError, TypeError):
        return handle


def discover(nvml: Any, hostname: str, errors: NvmlErrors) -> list[Gpu]:
    """Every GPU NVML sees (nvmlInit() first). One that does not answer is left out and its error counted."""
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        call = "nvmlDeviceGetHandleByIndex"
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            call = "nvmlDeviceGetUUID"
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            call = "nvmlDeviceGetPciInfo"
            bus_id = _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
            call = "nvmlDeviceGetName"
            name = _text(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as err:
            errors.add(str(index), call, err.value)
            continue
        labels = {"gpu": str(index), "UUID": uuid, "pci_bus_id": bus_id, "device": f"nvidia{index}",
                  "modelName": name, "Hostname": hostname}
        gpus.append(Gpu(index, handle, uuid, labels))
    return gpus


class XidWatcher:
    """The last Xid of each GPU, from NVML's event API (nvmlEventTypeXidCriticalError), as DCGM keeps it: 0 until a
    GPU reports one, then the last one reported. A GPU whose driver cannot register the event has no Xid series."""

    def __init__(self, nvml: Any, gpus: list[Gpu], errors: NvmlErrors) -> None:
        self.nvml = nvml
        self.errors = errors
        self._by_handle = {_handle_key(g.handle): g for g in gpus}
        self._by_uuid = {g.uuid: g for g in gpus}
        self._last: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events = None
        try:
            self._events = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as err:
            self._failed("all", "nvmlEventSetCreate", err)
            return
        for gpu in gpus:
            try:
                nvml.nvmlDeviceRegisterEvents(gpu.handle, nvml.nvmlEventTypeXidCriticalError, self._events)
            except nvml.NVMLError as err:
                self._failed(str(gpu.index), "nvmlDeviceRegisterEvents", err)
                continue
            self._last[gpu.index] = 0

    def _failed(self, gpu: str, call: str, err: Exception) -> None:
        code = getattr(err, "value", None)
        if code != self.nvml.NVML_ERROR_NOT_SUPPORTED:
            self.errors.add(gpu, call, code)

    def last(self) -> dict[int, int]:
        with self._lock:
            return dict(self._last)

    def wait_once(self, timeout_ms: int = XID_WAIT_MS) -> bool:
        """Wait for one event; True when an Xid was recorded."""
        nvml = self.nvml
        try:
            data = nvml.nvmlEventSetWait_v2(self._events, timeout_ms)
        except nvml.NVMLError as err:
            if err.value != nvml.NVML_ERROR_TIMEOUT:
                self._failed("all", "nvmlEventSetWait_v2", err)
                self._stop.wait(timeout_ms / 1000)  # an error repeats at once; don't spin on it
            return False
        if not data.eventType & nvml.nvmlEventTypeXidCriticalError:
            return False
        # By its handle first: a GPU that fell off the bus (Xid 79) may answer no call any more, its UUID included.
        gpu = self._by_handle.get(_handle_key(data.device))
        if gpu is None:
            try:
                gpu = self._by_uuid.get(_text(nvml.nvmlDeviceGetUUID(data.device)))
            except nvml.NVMLError as err:
                self._failed("all", "nvmlDeviceGetUUID", err)
        if gpu is None:
            LOG.error("Xid %d from a GPU that could not be identified", data.eventData)
            return False
        LOG.error("GPU %d (%s): Xid %d", gpu.index, gpu.uuid, data.eventData)
        with self._lock:
            self._last[gpu.index] = int(data.eventData)
        return True

    def start(self) -> None:
        if self._events is None or not self._last:
            return
        self._thread = threading.Thread(target=self._run, name="xid-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wait_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=XID_WAIT_MS / 1000 + 5)
        if self._events is not None:
            try:
                self.nvml.nvmlEventSetFree(self._events)
            except self.nvml.NVMLError as err:
                LOG.warning("nvmlEventSetFree failed: %s", err)
            self._events = None


class NvmlCollector:
    """A prometheus_client Collector: each collect() reads every GPU through `nvml` (the pynvml module, or any
    object with its functions and constants) and yields dcgm-exporter's families. Call nvmlInit() before."""

    def __init__(self, nvml: Any, hostname: str | None = None, watch_xid: bool = True) -> None:
        self.nvml = nvml
        self.errors = NvmlErrors(nvml)
        self.gpus = discover(nvml, hostname or socket.gethostname(), self.errors)
        self.xid = XidWatcher(nvml, self.gpus, self.errors) if watch_xid else None

    def describe(self) -> list[Metric]:
        return []  # registering must not read NVML; the families depend on what the GPUs support

    def _read(self, gpu: Gpu, call: str, *args: Any) -> Any:
        try:
            return getattr(self.nvml, call)(gpu.handle, *args)
        except self.nvml.NVMLError as err:
            if err.value != self.nvml.NVML_ERROR_NOT_SUPPORTED:
                self.errors.add(str(gpu.index), call, err.value)
            return None

    def _memory(self, gpu: Gpu) -> Any:
        """nvmlMemory_v2_t, whose `used` leaves out the memory the driver reserves (DCGM reports that as a field of
        its own, DCGM_FI_DEV_FB_RESERVED), or nvmlMemory_t on a driver too old for v2."""
        nvml = self.nvml
        try:
            return nvml.nvmlDeviceGetMemoryInfo(gpu.handle, version=nvml.nvmlMemory_v2)
        except nvml.NVMLError as err:
            if err.value == nvml.NVML_ERROR_FUNCTION_NOT_FOUND:
                return self._read(gpu, "nvmlDeviceGetMemoryInfo")
            if err.value != nvml.NVML_ERROR_NOT_SUPPORTED:
                self.errors.add(str(gpu.index), "nvmlDeviceGetMemoryInfo_v2", err.value)
            return None

    def readings(self, gpu: Gpu) -> dict[str, float]:
        """One GPU's values in DCGM's units, by DCGM field name; a value NVML did not give is absent."""
        nvml = self.nvml
        utilization = self._read(gpu, "nvmlDeviceGetUtilizationRates")
        power_mw = self._read(gpu, "nvmlDeviceGetPowerUsage")
        memory = self._memory(gpu)
        values = {
            GPU_UTIL[0]: None if utilization is None else utilization.gpu,
            FB_FREE[0]: None if memory is None else memory.free // MIB,  # bytes -> whole MiB, as DCGM reports
            FB_USED[0]: None if memory is None else memory.used // MIB,
            GPU_TEMP[0]: self._read(gpu, "nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU),
            POWER_USAGE[0]: None if power_mw is None else power_mw / 1000,  # mW -> W
            ECC_SBE_VOL_TOTAL[0]: self._read(gpu, "nvmlDeviceGetTotalEccErrors",
                                             nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_VOLATILE_ECC),
            ECC_DBE_VOL_TOTAL[0]: self._read(gpu, "nvmlDeviceGetTotalEccErrors",
                                             nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC),
        }
        return {name: value for name, value in values.items() if value is not None}

    def collect(self) -> Iterator[Metric]:
        families = {name: _family(name, kind, text) for name, kind, text in FIELDS}
        for gpu in self.gpus:
            for name, value in self.readings(gpu).items():
                families[name].add_sample(name, gpu.labels, value)
        yield from (f for f in families.values() if f.samples)
        if self.xid is not None:
            last = self.xid.last()
            xid = _family(*XID_ERRORS)
            for gpu in self.gpus:
                if gpu.index in last:
                    xid.add_sample(XID_ERRORS[0], gpu.labels | {"err_code": str(last[gpu.index])}, last[gpu.index])
            if xid.samples:
                yield xid
        errors = self.errors.family()
        if errors.samples:
            yield errors


def _family(name: str, kind: str, text: str) -> Metric:
    return GaugeMetricFamily(name, text) if kind == "gauge" else Metric(name, text, kind)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def exposition(registry: CollectorRegistry) -> bytes:
    """Prometheus text format 0.0.4, the format dcgm-exporter serves, with each family's TYPE line under its own
    name. prometheus_client's own text encoder names a counter family's TYPE line `<name>_total`, which would
    mis-type DCGM's counters (their names end in an upper-case _TOTAL)."""
    lines = []
    for family in registry.collect():
        text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        lines += [f"# HELP {family.name} {text}", f"# TYPE {family.name} {family.type}"]
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            lines.append(f"{sample.name}{{{labels}}} {floatToGoString(sample.value)}" if labels
                         else f"{sample.name} {floatToGoString(sample.value)}")
    return ("\n".join(lines) + "\n").encode() if lines else b""


def server(registry: CollectorRegistry, listen: str) -> ThreadingHTTPServer:
    """An HTTP server answering GET /metrics with the registry's exposition (not started)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN} or [::1]:9400")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            try:
                body = exposition(registry)
            except Exception:
                LOG.exception("collecting the GPU metrics failed")
                self.send_error(500, "collecting the GPU metrics failed; see the exporter's log")
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:
            LOG.debug(fmt, *args)

    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        daemon_threads = True

    return Server((host, int(port)), Handler)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sovkit.gpu_exporter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to serve /metrics on ({DEFAULT_LISTEN})")
    parser.add_argument("--hostname", default=None, help="the Hostname label (default: this machine's host name)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")

    import pynvml  # nvidia-ml-py

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        print(f"sovkit.gpu_exporter: NVML could not start ({err}); is the NVIDIA driver loaded?", file=sys.stderr)
        return 1
    try:
        collector = NvmlCollector(pynvml, args.hostname)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        try:
            httpd = server(registry, args.listen)
        except (OSError, ValueError) as err:
            print(f"sovkit.gpu_exporter: cannot listen on {args.listen}: {err}", file=sys.stderr)
            return 2
        if collector.xid is not None:
            collector.xid.start()
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
        LOG.info("serving %d GPU(s) on http://%s/metrics", len(collector.gpus), args.listen)
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            httpd.server_close()
            if collector.xid is not None:
                collector.xid.stop()
    finally:
        pynvml.nvmlShutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
