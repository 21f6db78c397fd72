"""``odia bench engines``: the small generator's engines side by side, on this machine.

For each dataset: clusters learned from its events, the trainer's training set built from them
(``build_training_set``) and one LoRA adapter trained on it with the trainer's code
(``train_lora``, prompt format 2: the function given, arguments only). Then every engine asked for
is measured in a process of its own (:mod:`odia.bench.engine_worker`) on that same adapter and the
same held-out records (the training set's eval split: requests of simple clusters, which are what
the router sends small): startup, adapter load (what a hot swap costs, the llama.cpp GGUF
conversion included), per-call latency p50/p99 at concurrency 1 and 4, throughput at 4, AST accuracy
against the large model's recorded calls, and peak memory.

Beside them, in the same run: the latency the simulated large model (``ReplaySimulatedLargeModel``,
lognormal with ``large_model.replay_median_ms`` / ``replay_p90_ms``) draws for the same requests,
so every engine's p50 is also given as a ratio of that median. Writes ``engines.json`` and
``engines.png``.

vLLM is measured with another environment's Python (``--vllm-python``, default ``.venv-vllm``;
``docs/vllm.md``) when that exists; an engine that is not installed is reported as such.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from odia.bench.common import fmt, learn, open_warm_embedder, percentiles, write_report
from odia.bench.engine_worker import EngineJob
from odia_stream.datasets import load_dataset
from odia_stream.figures import save_figure
from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.base_model import base_model_id, ensure_base_model
from odia_stream.large_model.replay import ReplaySimulatedLargeModel
from odia_stream.settings import OdiaSettings
from odia_stream.training.dataset import build_training_set
from odia_stream.training.lora import train_lora
from odia_stream.training.round import training_examples

__all__ = ["ENGINES", "TARGETS", "run_engine_bench"]

#: The engines the benchmark knows, in the order they are measured.
ENGINES = ("hf", "llamacpp", "vllm")
#: The issue's figures for a small-model call on a CPU (concurrency 1).
TARGETS = {"p50_ms": 300.0, "p99_ms": 800.0, "p50_over_large_median": 0.2, "accuracy": 0.95}
_WORKER_TIMEOUT_S = 1800


def _engine_python(engine: str, vllm_python: Path) -> tuple[str | None, str]:
    """The Python that runs ``engine`` here, or ``None`` and why not."""
    import importlib.util

    if engine == "vllm":
        if importlib.util.find_spec("vllm") is not None:
            return sys.executable, ""
        if vllm_python.is_file():
            return str(vllm_python), ""
        return None, f"vLLM is not installed here nor at {vllm_python} (bash scripts/setup_vllm_env.sh)"
    if engine == "llamacpp" and importlib.util.find_spec("llama_cpp") is None:
        return None, "llama-cpp-python is not installed (pip install -e '.[llamacpp]', scripts/setup_env.sh)"
    return sys.executable, ""


def _run_worker(python: str, job: EngineJob, work: Path) -> dict[str, Any]:
    job_file, out_file = work / f"job-{job.engine}.json", work / f"figures-{job.engine}.json"
    job_file.write_text(job.model_dump_json(), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "odia.bench.engine_worker", str(job_file), str(out_file)],
        capture_output=True, text=True, env=env, timeout=_WORKER_TIMEOUT_S, check=False,
    )
    if proc.returncode != 0 or not out_file.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
        return {"engine": job.engine, "error": f"exit {proc.returncode}: " + "\n".join(tail)}
    figures: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    return figures


def _summarise(figures: dict[str, Any], large_median_ms: float) -> dict[str, Any]:
    """Percentiles, accuracy and the targets' verdicts of one engine's raw figures."""
    if "error" in figures:
        return figures
    c1, cn = percentiles(figures.pop("latency_ms_c1")), percentiles(figures.pop("latency_ms_concurrent"))
    accuracy = figures["correct"] / figures["records"]
    ratio = c1["p50"] / large_median_ms
    return {
        **figures,
        "latency_ms_c1": {k: round(v, 1) for k, v in c1.items()},
        "latency_ms_concurrent": {k: round(v, 1) for k, v in cn.items()},
        "accuracy": round(accuracy, 4),
        "p50_over_large_median": round(ratio, 3),
        "targets_met": {
            "p50_ms": c1["p50"] <= TARGETS["p50_ms"],
            "p99_ms": c1["p99"] <= TARGETS["p99_ms"],
            "p50_over_large_median": ratio <= TARGETS["p50_over_large_median"],
            "accuracy": accuracy >= TARGETS["accuracy"],
        },
    }


def _bench_dataset(
    base: OdiaSettings, path: Path, engines: Sequence[str], *, events: int, records: int, steps: int | None,
    vllm_python: Path, console: Console,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="odia-bench-engines-") as tmp:
        work = Path(tmp)
        trainer = base.trainer if steps is None else base.trainer.model_copy(update={"max_steps": steps})
        settings = base.model_copy(update={"state_dir": work, "model_cache_dir": base.cache_dir, "trainer": trainer})
        model_dir = ensure_base_model(settings)
        evs = list(load_dataset(path, limit=events))
        learner = learn(settings, evs, open_warm_embedder(settings), f"learning {path}")
        try:
            ts = build_training_set(learner, None, settings.training_data, progress=True)
        finally:
            learner.close()
        held_out = list(ts.eval[:records])
        if not held_out:
            raise ValueError(f"{path}: the training set holds no eval records (more --events?)")
        console.print(f"{path}: {len(ts.train)} training rows, {len(held_out)} held-out records")
        trained = train_lora(model_dir, training_examples(ts, settings), settings.trainer, work / "adapter")
        sha = adapter_sha256(trained.adapter_dir)
        console.print(f"adapter: {trained.steps} steps, {trained.seconds_per_step:.2f} s/step ({trained.seconds:.0f} s)")
        large = ReplaySimulatedLargeModel(
            evs, dataset_name=str(path), median_ms=settings.large_model.replay_median_ms,
            p90_ms=settings.large_model.replay_p90_ms, sleep=False,
        )
        large_ms = percentiles([large.latency_ms(r.event_id) for r in held_out])
        job_base = {
            "state_dir": work, "model_cache_dir": settings.cache_dir, "adapter_version": f"bench-{sha[:12]}",
            "adapter_path": trained.adapter_dir, "adapter_sha256": sha, "base_model": base_model_id(model_dir),
            "records": held_out,
        }
        results = []
        for engine in engines:
            python, why_not = _engine_python(engine, vllm_python)
            if python is None:
                console.print(f"[yellow]{engine}: not measured: {why_not}[/]")
                results.append({"engine": engine, "error": f"not measured: {why_not}"})
                continue
            with console.status(f"{path}: measuring {engine} ({len(held_out)} records, twice)"):
                figures = _run_worker(python, EngineJob(engine=engine, **job_base), work)
            if "error" in figures:
                console.print(f"[red]{engine} failed[/]: {figures['error']}")
            results.append(_summarise(figures, large_ms["p50"]))
    return {
        "dataset": str(path),
        "held_out_records": len(held_out),
        "training": {
            "rows": len(ts.train), "steps": trained.steps, "seconds": round(trained.seconds, 1),
            "seconds_per_step": round(trained.seconds_per_step, 2), "stop_reason": trained.stop_reason,
        },
        "large_model_simulated_ms": {k: round(v, 1) for k, v in large_ms.items()},
        "engines": results,
    }


def plot_engines(result: dict[str, Any], path: Path) -> None:
    """Per dataset: p50 and p99 per engine at concurrency 1 and 4 against the simulated large
    model's median, and AST accuracy per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["datasets"]
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 3.8 * len(rows)), squeeze=False)
    for (lat, acc), row in zip(axes, rows, strict=True):
        measured = [e for e in row["engines"] if "error" not in e]
        names = [e["engine"] for e in measured]
        x = np.arange(len(names))
        for offset, key, label in ((-0.2, "latency_ms_c1", "concurrency 1"), (0.2, "latency_ms_concurrent", "concurrency 4")):
            p50 = [e[key]["p50"] for e in measured]
            p99 = [e[key]["p99"] for e in measured]
            lat.bar(x + offset, p50, width=0.38, label=f"p50, {label}")
            lat.scatter(x + offset, p99, marker="_", s=300, color="k", zorder=3)
        lat.axhline(row["large_model_simulated_ms"]["p50"], color="r", ls="--", label="large model median (simulated)")
        lat.axhline(TARGETS["p50_ms"], color="g", ls=":", label="target p50")
        lat.set_xticks(x, names)
        lat.set_ylim(bottom=0)
        lat.set_ylabel("ms per call (bar p50, dash p99)")
        lat.set_title(Path(row["dataset"]).name)
        lat.legend(fontsize=7)
        bars = acc.bar(names, [e["accuracy"] for e in measured], color="#2a7")
        acc.bar_label(bars, labels=[f"{e['accuracy']:.2f}" for e in measured])
        acc.axhline(TARGETS["accuracy"], color="g", ls=":")
        acc.set_ylim(0, 1.05)
        acc.set_title(f"AST accuracy on {row['held_out_records']} held-out records")
    save_figure(fig, path)


def _print(result: dict[str, Any], console: Console) -> None:
    table = Table(title="odia bench engines (ms per small-model call)")
    for col in ("dataset", "engine", "load ms", "p50 c1", "p99 c1", "p50 c4", "p99 c4", "req/s c4",
                "p50/large", "accuracy", "peak MB"):
        table.add_column(col, justify="left" if col in ("dataset", "engine") else "right")
    for row in result["datasets"]:
        name = Path(row["dataset"]).name
        for e in row["engines"]:
            if "error" in e:
                table.add_row(name, e["engine"], *["–"] * 8, e["error"].splitlines()[0][:40])
                continue
            c1, cn = e["latency_ms_c1"], e["latency_ms_concurrent"]
            table.add_row(
                name, e["engine"], fmt(e["adapter_load_ms"], 0), fmt(c1["p50"], 0), fmt(c1["p99"], 0),
                fmt(cn["p50"], 0), fmt(cn["p99"], 0), fmt(e["throughput_rps_concurrent"], 2),
                fmt(e["p50_over_large_median"]), fmt(e["accuracy"]), fmt(e["peak_rss_mb"], 0),
            )
        table.add_row(name, "large (simulated)", "", fmt(row["large_model_simulated_ms"]["p50"], 0),
                      fmt(row["large_model_simulated_ms"]["p99"], 0), "", "", "", "1.000", "", "")
    console.print(table)


def run_engine_bench(
    base: OdiaSettings,
    datasets: Sequence[Path],
    *,
    engines: Sequence[str] = ENGINES,
    events: int = 3000,
    records: int = 40,
    steps: int | None = None,
    vllm_python: Path = Path(".venv-vllm/bin/python"),
    out_dir: Path = Path("reports/bench"),
    console: Console | None = None,
) -> dict[str, Any]:
    """Measure ``engines`` on each dataset (an adapter trained per dataset) and write the report."""
    console = console or Console()
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise ValueError(f"unknown engines {sorted(unknown)} (known: {', '.join(ENGINES)})")
    rows = [
        _bench_dataset(base, Path(p), engines, events=events, records=records, steps=steps,
                       vllm_python=vllm_python, console=console)
        for p in datasets
    ]
    report = write_report(out_dir / "engines.json", {"targets": TARGETS, "datasets": rows})
    plot_engines(report, out_dir / "engines.png")
    _print(report, console)
    console.print(f"wrote {out_dir / 'engines.json'} and {out_dir / 'engines.png'}")
    return report
