"""One gate run of one model: find its evaluation sets in a copy of the in-country model store and prove each by its
digest, render the harness's tasks, run lm-evaluation-harness against the endpoint (the gateway) in a process of
its own, and judge the scores against the stack's thresholds. Whatever the harness could not measure fails."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from sovkit.config.locations import path_in_store
from sovkit.config.site import SiteConfig
from sovkit.errors import REDACTED, redact
from sovkit.render.evaltasks import FILTER, METRIC, task_configs, task_name
from sovkit.render.gate import GateReport, SetScore, judge
from sovkit.render.vllm_args import TELEMETRY_ENV
from sovkit.workspace import HOST_BUNDLE_DIR, SiteWorkspace

HARNESS_MODEL_TYPE = "local-chat-completions"  # lm-eval's OpenAI-compatible chat model: the route tenants call
CONCURRENT_REQUESTS = 8
REQUEST_TIMEOUT_S = 120
RUN_TIMEOUT_S = 3600
KEY_ENV = "OPENAI_API_KEY"  # where lm-eval's OpenAI-compatible models read the key
# The sets are local files: lm-eval and the datasets library stay off every hub and do not phone home.
OFFLINE_ENV = {**TELEMETRY_ENV, "HF_DATASETS_OFFLINE": "1"}
# How lm-eval's API models log a refused request.
HTTP_REFUSAL = re.compile(r"Status code: (?P<status>\d+), Response text: (?P<body>.*?)(\. Retrying\.\.\.)?$")


Wrap = Callable[[list[str]], list[str]]


class GateError(Exception):
    """Nothing was evaluated: a set is missing or not the one the stack names. The message says which and why."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # the gateway, scheme://host:port (a trailing /v1 is accepted)
    api_key: str  # the gate's own key at the gateway
    ca_file: Path | None = None  # the CA that signs the gateway's certificate (the site CA)

    @property
    def chat_url(self) -> str:
        return self.url.rstrip("/").removesuffix("/v1") + "/v1/chat/completions"


def default_store_dir(site: SiteConfig, workspace: SiteWorkspace | None = None) -> Path | None:
    """The model store as this machine sees it: the bundle's folder when the hosts read the store from the bundle
    (the local site and rehearsals), the store itself when it is a folder here, else unknown."""
    store = site.residency.model_store
    in_bundle = path_in_store(store, HOST_BUNDLE_DIR)
    if in_bundle is not None:
        return (workspace or SiteWorkspace.of(site.name)).bundle / in_bundle
    folder = Path(store.removeprefix("file://"))
    return folder if store.startswith(("/", "file://")) and folder.is_dir() else None


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def locate_sets(site: SiteConfig, served: str, store_dir: Path) -> dict[str, Path]:
    """{set name: its file in `store_dir`, the model store as this machine sees it}, each proven by its digest."""
    gate = site.serving.models[served].evaluation
    files: dict[str, Path] = {}
    for name, evaluation_set in (gate.sets.items() if gate else []):
        where = f"models.{served}.evaluation.sets.{name}"
        relative = path_in_store(evaluation_set.source, site.residency.model_store)
        if relative is None:
            raise GateError(f"{where}: {evaluation_set.source} is not in the model store {site.residency.model_store}")
        path = store_dir / relative
        if not path.is_file():
            raise GateError(f"{where}: {path} does not exist (the model store's {relative}, looked for in {store_dir})")
        digest = sha256_of(path)
        if digest != evaluation_set.digest:
            raise GateError(f"{where}: {path} has {digest}; the stack names {evaluation_set.digest}. Evaluate only "
                            "the set the stack names: restore it, or name the new set's digest in the stack")
        files[name] = path
    return files


def run_gate(site: SiteConfig, served: str, endpoint: Endpoint, store_dir: Path, work_dir: Path, *,
             timeout_s: float = RUN_TIMEOUT_S, wrap: Wrap | None = None) -> GateReport:
    """Evaluate one gated model through `endpoint`; the harness's tasks, log and scores stay in `work_dir`. `wrap`
    turns the harness's command line into one run where the gateway is reached (a rehearsal's admin machine)."""
    spec = site.serving.models[served]
    if spec.evaluation is None:
        raise GateError(f"models.{served} has no evaluation in {site.source}: nothing to gate")
    files = locate_sets(site, served, store_dir)
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    tasks_dir = work_dir / "tasks"
    tasks_dir.mkdir(parents=True, exist_ok=True)
    for name, config in task_configs(site, served, {n: str(p) for n, p in files.items()}).items():
        (tasks_dir / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    scores_path = work_dir / "scores.json"
    scores_path.unlink(missing_ok=True)
    error = _run_harness(served, endpoint, tasks_dir, scores_path, work_dir, timeout_s, wrap)
    raw = json.loads(scores_path.read_text()) if error is None else {}
    version = raw.get("lm_eval_version") or importlib.metadata.version("lm_eval")
    scores = []
    for name, path in files.items():
        task = task_name(served, name)
        if task in raw.get("results", {}):
            scores.append(SetScore(name=name, language=spec.evaluation.sets[name].language,
                                   source=spec.evaluation.sets[name].source, digest=sha256_of(path),
                                   items=int(raw["n-samples"][task]["effective"]),
                                   score=float(raw["results"][task][f"{METRIC},{FILTER}"])))
    verdicts = judge(scores, spec.evaluation.thresholds, error=error)
    return GateReport(site=site.name, model=served, catalogue=spec.catalogue, revision=spec.revision,
                      endpoint=redact(endpoint.chat_url), harness=f"lm-eval {version} {HARNESS_MODEL_TYPE}",
                      started=started.isoformat(timespec="seconds"), seconds=round(time.monotonic() - clock, 1),
                      sets=scores, error=error, verdicts=verdicts, passed=all(v.passed for v in verdicts))


def _run_harness(served: str, endpoint: Endpoint, tasks_dir: Path, scores_path: Path, work_dir: Path,
                 timeout_s: float, wrap: Wrap | None) -> str | None:
    """Runs sovkit.gate.harness; None when it wrote the scores, else why not (the last words of its log)."""
    request = {"model_type": HARNESS_MODEL_TYPE, "tasks_dir": str(tasks_dir), "output": str(scores_path),
               "tasks": sorted(p.stem for p in tasks_dir.glob("*.yaml")),
               "model_args": {"model": served, "base_url": endpoint.chat_url, "tokenizer_backend": "none",
                              "num_concurrent": CONCURRENT_REQUESTS, "timeout": REQUEST_TIMEOUT_S}}
    (work_dir / "request.json").write_text(json.dumps(request, indent=2))
    env = {**os.environ, **OFFLINE_ENV, KEY_ENV: endpoint.api_key, "HF_HOME": str(work_dir / "hf-home")}
    if endpoint.ca_file:  # aiohttp (lm-eval's client) and requests trust the site CA through these
        env |= {"SSL_CERT_FILE": str(endpoint.ca_file), "REQUESTS_CA_BUNDLE": str(endpoint.ca_file)}
    log = work_dir / "harness.log"
    try:
        argv = [sys.executable, "-m", "sovkit.gate.harness", str(work_dir / "request.json")]
        proc = subprocess.run(wrap(argv) if wrap else argv, capture_output=True, text=True, env=env,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"lm-eval ran past {timeout_s:.0f} s"
    # lm-eval prints a failed request's headers, the key among them: the log is kept without it.
    output = (proc.stdout + proc.stderr).replace(endpoint.api_key, REDACTED)
    log.write_text(output)
    if proc.returncode == 0 and scores_path.is_file():
        return None
    lines = [line.strip() for line in output.replace("\r", "\n").splitlines() if line.strip()] or ["no output"]
    refused = next((m for line in lines if (m := HTTP_REFUSAL.search(line))), None)  # an HTTP refusal says most
    telling = f"the endpoint answered {refused['status']}: {refused['body']}" if refused else lines[-1]
    return redact(f"lm-eval exited with {proc.returncode}: {telling[:300]} (log: {log})")


def write_report(report: GateReport, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.model}.json"
    path.write_text(report.model_dump_json(indent=2) + "\n")
    return path

