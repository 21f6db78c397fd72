"""One engine of ``odia bench engines``, measured in a process of its own.

``python -m odia.bench.engine_worker JOB OUT``: ``JOB`` is the JSON an :class:`EngineJob` dumps
(engine, adapter, held-out records); the settings are this process's (``ODIA_`` environment) with
the job's state folder. Every figure is measured here, on the real engine, through the
:class:`~odia_stream.generation.protocol.SmallGenerator` interface serving uses
(:func:`~odia_stream.serving.backends.build_generator`): startup, adapter load (what a hot swap
costs), per-call latency at concurrency 1 and at ``concurrency``, AST accuracy of the answers, and
the peak memory of this process and its children (``VmHWM``). The figures are written to ``OUT`` as JSON.

It runs apart so each engine's memory is its own, and so an engine installed in another
environment (vLLM in ``.venv-vllm``) is measured by that environment's Python.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from odia_stream.generation.calls import request_for
from odia_stream.generation.protocol import AdapterRef, GenerationResult, SmallGenerator
from odia_stream.settings import OdiaSettings, get_settings
from odia_stream.training.dataset import TrainingRecord
from odia_stream.training.gate import record_prompt, score_result

__all__ = ["EngineJob", "measure_engine"]

#: Wrong answers kept in the figures, to look at.
_KEEP_MISSES = 8


class EngineJob(BaseModel):
    """What one engine is measured on: the same adapter and records for every engine."""

    engine: str
    #: The run's state folder (adapter conversions go there) and the shared model cache.
    state_dir: Path
    model_cache_dir: Path
    adapter_version: str
    adapter_path: Path
    adapter_sha256: str
    base_model: str
    records: list[TrainingRecord]
    concurrency: int = 4


def _peak_rss_mb() -> float:
    """Peak resident memory of this process plus that of its live children (vLLM's engine core), in MB.

    ``VmHWM`` of ``/proc/<pid>/status``, not ``getrusage``: a process started with exec inherits its
    parent's ``ru_maxrss``, so the benchmark's own peak (it trains the adapter) would show up here.
    """
    status: dict[int, dict[str, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines = (entry / "status").read_text().splitlines()
            except OSError:  # gone meanwhile
                continue
            status[int(entry.name)] = dict(line.split(":", 1) for line in lines if ":" in line)
    family, grew = {os.getpid()}, True
    while grew:
        kids = {pid for pid, st in status.items() if int(st.get("PPid", "0")) in family} - family
        family |= kids
        grew = bool(kids)
    return sum(int(status[pid].get("VmHWM", "0 kB").split()[0]) for pid in family if pid in status) / 1024.0


async def _one(
    generator: SmallGenerator, record: TrainingRecord, settings: OdiaSettings, ref: AdapterRef
) -> tuple[float, GenerationResult, bool, str]:
    prompt = record_prompt(record, settings.prompt)
    started = time.perf_counter()
    (result,) = await generator.generate([request_for(prompt, ref, settings.small_answer_tokens)])
    ms = (time.perf_counter() - started) * 1000.0
    ok, reason = score_result(record, prompt, result)
    return ms, result, ok, reason


async def measure_engine(job: EngineJob, settings: OdiaSettings) -> dict[str, Any]:
    """Start ``job.engine``, load the adapter, answer the records one at a time and then
    ``job.concurrency`` at a time; the figures."""
    from odia_stream.serving.backends import build_generator, resolve_backend

    backend = resolve_backend(job.engine)
    started = time.perf_counter()
    generator = await build_generator(settings, backend)
    startup_s = time.perf_counter() - started
    ref = AdapterRef(job.adapter_version, job.adapter_path, job.adapter_sha256, job.base_model)
    try:
        started = time.perf_counter()
        await generator.load_adapter(ref)
        load_ms = (time.perf_counter() - started) * 1000.0
        await _one(generator, job.records[0], settings, ref)  # first call after the load: not timed
        serial = [await _one(generator, r, settings, ref) for r in job.records]
        semaphore = asyncio.Semaphore(job.concurrency)

        async def bounded(record: TrainingRecord) -> tuple[float, GenerationResult, bool, str]:
            async with semaphore:
                return await _one(generator, record, settings, ref)

        started = time.perf_counter()
        concurrent = await asyncio.gather(*(bounded(r) for r in job.records))
        concurrent_s = time.perf_counter() - started
        peak_rss_mb = _peak_rss_mb()
    finally:
        await generator.aclose()
    reasons: dict[str, int] = {}
    by_function: dict[str, list[int]] = {}
    misses: list[dict[str, str]] = []
    for record, (_, result, ok, reason) in zip(job.records, serial, strict=True):
        reasons[reason] = reasons.get(reason, 0) + 1
        if not ok and len(misses) < _KEEP_MISSES:
            misses.append({"query": record.query, "expected": record.call.model_dump_json(), "got": result.text,
                           "reason": reason})
        stat = by_function.setdefault(record.call.name, [0, 0])
        stat[0] += int(ok)
        stat[1] += 1
    return {
        "engine": backend,
        "startup_s": round(startup_s, 2),
        "adapter_load_ms": round(load_ms, 1),
        "latency_ms_c1": [round(ms, 2) for ms, *_ in serial],
        "latency_ms_concurrent": [round(ms, 2) for ms, *_ in concurrent],
        "concurrency": job.concurrency,
        "throughput_rps_concurrent": round(len(job.records) / concurrent_s, 3),
        "correct": sum(ok for *_, ok, _ in serial),
        "records": len(job.records),
        "reasons": dict(sorted(reasons.items())),
        "by_function": {f: {"correct": c, "records": n} for f, (c, n) in sorted(by_function.items())},
        "misses": misses,
        "same_answers_concurrent": sum(a[1].text == b[1].text for a, b in zip(serial, concurrent, strict=True)),
        "prompt_tokens_mean": sum(r.prompt_tokens for _, r, *_ in serial) / len(serial),
        "output_tokens_mean": sum(r.output_tokens for _, r, *_ in serial) / len(serial),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }


def main(argv: list[str]) -> int:
    """``engine_worker JOB OUT``."""
    job_file, out_file = (Path(a) for a in argv)
    job = EngineJob.model_validate_json(job_file.read_text(encoding="utf-8"))
    if not job.records:
        raise SystemExit("engine_worker: the job has no records")
    settings = get_settings().model_copy(update={"state_dir": job.state_dir, "model_cache_dir": job.model_cache_dir})
    figures = asyncio.run(measure_engine(job, settings))
    out_file.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
