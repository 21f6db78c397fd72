"""``odia bench engines``: the worker measures a real engine (llama.cpp, packaged SmolLM2) through the
serving interface on hand-made held-out records; the summary turns its figures into percentiles
and target verdicts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from odia.bench.engine_bench import TARGETS, _engine_python, _run_worker, _summarise
from odia.bench.engine_worker import EngineJob
from odia_stream.adapters.random_adapter import random_lora_adapter
from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.base_model import base_model_id
from odia_stream.training.dataset import TrainingRecord
from schemas import FunctionCall, ToolSpec

PLAY = ToolSpec.model_validate({
    "name": "PlayMusic",
    "description": "Play a song",
    "parameters": {"type": "object", "properties": {"artist": {"type": "string"}, "song": {"type": "string"}},
                   "required": ["artist"]},
})


def _record(i: int, query: str, artist: str) -> TrainingRecord:
    return TrainingRecord(
        event_id=f"e{i}", group=f"g{i:016x}", cluster="c" + "0" * 16, function="PlayMusic",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC), completeness=1, query=query, history=[], tools=[PLAY],
        call=FunctionCall(name="PlayMusic", arguments={"artist": artist}),
    )


RECORDS = [_record(0, "play something by Miles Davis", "Miles Davis"), _record(1, "play the Beatles", "the Beatles"),
           _record(2, "put on some Adele", "Adele")]


def test_the_worker_measures_llamacpp_through_the_serving_interface(
    base_model_dir: Path, model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = random_lora_adapter(base_model_dir, tmp_path / "adapter", seed=3, rank=4, alpha=8).path
    job = EngineJob(
        engine="llamacpp", state_dir=tmp_path / "state", model_cache_dir=model_cache, adapter_version="bench-test",
        adapter_path=adapter, adapter_sha256=adapter_sha256(adapter), base_model=base_model_id(base_model_dir),
        records=RECORDS, concurrency=2,
    )
    monkeypatch.setenv("ODIA_LLAMACPP__THREADS", "2")
    figures = _run_worker(sys.executable, job, tmp_path)
    assert "error" not in figures, figures.get("error")
    assert figures["engine"] == "llamacpp" and figures["records"] == 3 and 0 <= figures["correct"] <= 3
    assert len(figures["latency_ms_c1"]) == len(figures["latency_ms_concurrent"]) == 3
    assert figures["same_answers_concurrent"] == 3  # greedy: the same answers however many wait
    assert figures["adapter_load_ms"] > 0 and figures["peak_rss_mb"] > 50 and figures["prompt_tokens_mean"] > 20
    assert len(figures["misses"]) == 3 - figures["correct"] and all(m["reason"] != "match" for m in figures["misses"])
    assert (tmp_path / "state" / "lora-gguf" / f"{job.adapter_sha256}.gguf").is_file()  # converted at load
    summary = _summarise(dict(figures), large_median_ms=1600.0)
    assert summary["accuracy"] == pytest.approx(figures["correct"] / 3, abs=1e-4)
    assert summary["latency_ms_c1"]["n"] == 3 and summary["latency_ms_c1"]["p50"] <= summary["latency_ms_c1"]["p99"]


def test_a_failed_worker_is_reported_not_raised(tmp_path: Path) -> None:
    job = EngineJob(
        engine="onnx", state_dir=tmp_path, model_cache_dir=tmp_path, adapter_version="bench-x", adapter_path=tmp_path / "none",
        adapter_sha256="0" * 64, base_model="nobody", records=RECORDS[:1],
    )
    figures = _run_worker(sys.executable, job, tmp_path)
    assert figures["engine"] == "onnx" and figures["error"].startswith("exit ") and "unknown serving backend" in figures["error"]
    assert _summarise(figures, 1600.0) is figures


def test_the_summary_gives_each_target_its_verdict() -> None:
    raw = {"engine": "x", "correct": 19, "records": 20, "latency_ms_c1": [100.0] * 18 + [900.0] * 2,
           "latency_ms_concurrent": [200.0] * 20}
    s = _summarise(json.loads(json.dumps(raw)), large_median_ms=1000.0)
    assert s["accuracy"] == 0.95 and s["p50_over_large_median"] == 0.1
    assert s["targets_met"] == {"p50_ms": True, "p99_ms": False, "p50_over_large_median": True, "accuracy": True}
    assert set(s["targets_met"]) == set(TARGETS)


def test_an_engine_not_installed_says_how_to_install_it(tmp_path: Path) -> None:
    python, why = _engine_python("vllm", tmp_path / "no-python")
    if python is None:
        assert "setup_vllm_env.sh" in why
    assert _engine_python("hf", tmp_path)[0] == sys.executable
