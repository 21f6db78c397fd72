"""`odia bench faults` with the real worker and its own broker: values of up to 1.6 MB among the
events are dead-lettered whole, and the broker stopped mid-stream and started again loses nothing;
the audit adds up every time."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from odia.bench.faults_bench import OVERSIZED_BYTES, run_faults_bench
from odia_stream.settings import OdiaSettings

#: Starts a broker and the real ingest worker.
pytestmark = pytest.mark.slow


def test_oversized_values_are_dead_lettered_and_nothing_is_lost(
    tmp_path: Path, model_cache: Path, datasets_dir: Path
) -> None:
    out = tmp_path / "out"
    printed = io.StringIO()
    report = run_faults_bench(
        OdiaSettings(state_dir=tmp_path / "state", model_cache_dir=model_cache), datasets_dir / "snips", out,
        kinds=["oversized"], events=200, console=Console(file=printed, width=200),
    )
    (trial,) = report["trials"]
    assert trial["records_in"] + trial["refused"] == 200 + len(OVERSIZED_BYTES)
    assert trial["lost"] == 0 and trial["adds_up"] and report["lost"] == 0
    assert trial["dead_letters"] == trial["dlq_records"] == len(OVERSIZED_BYTES) - trial["refused"]
    reasons = {k.removeprefix("dead_letter:"): n for k, n in trial["counts"].items() if k.startswith("dead_letter:")}
    assert sum(reasons.values()) == trial["dead_letters"] and set(reasons) <= {"not_utf8", "too_large"}
    assert json.loads((out / "faults.json").read_text())["trials_run"] == 1
    assert (out / "faults.png").stat().st_size > 0
    assert "0 lost" in printed.getvalue()


def test_a_broker_restart_mid_stream_loses_nothing(tmp_path: Path, model_cache: Path, datasets_dir: Path) -> None:
    report = run_faults_bench(
        OdiaSettings(state_dir=tmp_path / "state", model_cache_dir=model_cache), datasets_dir / "snips",
        tmp_path / "out", kinds=["broker_restart"], events=1000, console=Console(file=io.StringIO()),
    )
    (trial,) = report["trials"]
    assert trial["records_in"] == 1000 and trial["refused"] == 0
    assert trial["lost"] == 0 and trial["accounted"] == 1000 and trial["adds_up"], trial
    assert trial["recover_s"] is not None and trial["counts"]["accepted"] + trial["counts"].get("duplicate", 0) == 1000
