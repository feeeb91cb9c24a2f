"""`sovkit plan STACK`, `sovkit values STACK` and `sovkit catalogue` (click commands; the main CLI registers them)."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from sovkit.clitools import console, errors, load_site
from sovkit.config import SiteConfig
from sovkit.config.planner import ModelPlan, plan_site
from sovkit.render.vllm_args import PlanError


def _gpus(p: ModelPlan) -> str:
    span = f" on each of {p.pipeline_parallel} nodes (pipeline parallel {p.pipeline_parallel})" \
        if p.pipeline_parallel > 1 else ""
    return f"{p.tensor_parallel} x {p.accelerator_model} per replica (tensor parallel {p.tensor_parallel}){span}"


def _describe(p: ModelPlan) -> list[str]:
    rows = [
        ("weights", f"{p.weights_gib:.{2 if p.weights_gib >= 0.01 else 5}f} GiB ({p.quantization})"),
        ("KV cache", f"{p.kv_kib_per_token:g} KiB per token; {p.kv_cache_gib:.1f} GiB per replica = "
                     f"{p.kv_tokens} tokens" + (" (VLLM_CPU_KVCACHE_SPACE)" if p.accelerator == "cpu" else "")),
        ("concurrency", f"{p.concurrent_sequences} sequences of {p.max_context} tokens "
                        f"(max-num-seqs {p.max_num_seqs})"),
    ]
    if p.accelerator == "cpu":
        rows.append(("CPU", f"{p.memory_gib:.1f} GiB of RAM per replica, {p.replicas} replicas"))
    else:
        rows += [("GPUs", f"{_gpus(p)}, {p.replicas} replicas"),
                 ("gpu-mem-util", f"{p.gpu_memory_utilization:.2f}")]
    return [f"  {k:<13}{v}" for k, v in rows]


@click.command()
@click.argument("stacks", nargs=-1, required=True, metavar="STACK...")
def plan(stacks: tuple[str, ...]) -> None:
    """Sizing of every model of a site: weights, KV cache, concurrency, GPUs, tensor parallel and memory
    utilisation. Exit 1 when a model does not fit, naming a quantization or a smaller model that would."""
    failed = 0
    for i, stack in enumerate(stacks):
        if i:
            console.print()
        failed += _plan_one(load_site(stack, fit=False))  # plan shows what does not fit, and what would
    if failed:
        raise SystemExit(1)


def _plan_one(site: SiteConfig) -> int:
    plans = plan_site(site)
    console.print(f"[bold]{site.name}[/bold]: {site.accelerator.accelerator}, {site.platform.mode} mode")
    for p in plans:
        state = "[green]fits[/green]" if p.fits else "[red]does not fit[/red]"
        console.print(f"[bold]{p.served_name}[/bold]  {p.catalogue_id}  {state}")
        if p.fits:
            console.print("\n".join(_describe(p)), markup=False)
    failed = [p for p in plans if not p.fits]
    for p in failed:
        errors.print(f"{site.source}: sovereign-ai:models.{p.served_name}", markup=False)
        errors.print(f"  problem: {p.problem}", markup=False)
        for s in p.suggestions:
            errors.print(f"  would fit: {s}", markup=False)
        if not p.suggestions:
            errors.print("  would fit: no catalogue model or quantization fits this hardware; add accelerators",
                         markup=False)
    if not failed:
        gpus = sum(p.gpus_per_replica * p.replicas for p in plans)
        console.print(f"{len(plans)} models fit" + (f", {gpus} GPUs in use" if gpus else ""))
    return len(failed)


@click.command()
@click.argument("stack")
def values(stack: str) -> None:
    """The values of charts/sovkit-serving for a site, as YAML on stdout."""
    from sovkit.render.values import dump_values, render_values

    site = load_site(stack)
    if site.platform.mode != "kubernetes":
        errors.print(f"note: {site.name} runs in {site.platform.mode} mode (systemd units, no chart); these are the "
                     "values it would get on Kubernetes", markup=False)
    try:
        rendered = render_values(site)
    except PlanError as err:
        errors.print(f"{site.source}: {err}\n  run `sovkit plan {stack}` for what would fit", markup=False)
        raise SystemExit(1) from None
    sys.stdout.write(f"# values of charts/sovkit-serving for {site.name}, rendered by `sovkit values`; do not edit\n")
    sys.stdout.write(dump_values(rendered))


def catalogue_rows() -> list[dict]:
    """Each catalogue model as `sovkit catalogue` shows it: its tasks and their routes, its licence and the uses it
    allows, its context and languages, and for each published quantization the checkpoint and the accelerators vLLM
    has kernels for it on (the vendor registry)."""
    from sovkit.config.catalogue import catalogue, tasks
    from sovkit.config.licences import licences

    rows = []
    for entry in catalogue().values():
        licence = licences()[entry.licence]
        rows.append({
            "id": entry.id, "name": entry.name, "parameters": entry.parameters, "max_context": entry.max_context,
            "tasks": {t: list(tasks()[t].routes) for t in entry.tasks},
            "licence": {"id": licence.id, "url": licence.url, "uses": list(licence.uses)},
            "languages": list(entry.languages),
            "quantizations": {q: {"checkpoint": quant.checkpoint,
                                  "accelerators": {v: list(g) for v, g in entry.quantization_support()[q].items()}}
                              for q, quant in entry.quantizations.items()},
        })
    return rows


@click.command(name="catalogue")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def catalogue_command(as_json: bool) -> None:
    """The models a stack may serve: tasks, licence, context, languages, and for each quantization the checkpoint and
    the accelerators vLLM serves it on."""
    rows = catalogue_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        console.print(f"[bold]{row['id']}[/bold]  {escape(row['name'])}")
        tasks = "; ".join(f"{t} ({', '.join(routes)})" for t, routes in row["tasks"].items())
        licence = row["licence"]
        lines = [("tasks", tasks), ("licence", f"{licence['id']}, allows {', '.join(licence['uses'])} "
                                               f"({licence['url']})"),
                 ("context", f"{row['max_context']} tokens; {row['parameters'] / 1e9:.2f}B parameters"),
                 ("languages", ", ".join(row["languages"]))]
        for q, quant in row["quantizations"].items():
            where = "; ".join(f"{v}: {', '.join(g)}" for v, g in quant["accelerators"].items())
            lines.append((f"{q}", f"{quant['checkpoint']}  [{where}]"))
        console.print("\n".join(f"  {k:<11}{v}" for k, v in lines), markup=False)
