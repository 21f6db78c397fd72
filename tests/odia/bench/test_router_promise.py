"""`odia bench router --seeds`: repeated splits, both calibration methods, the nearest-centroid
baseline, the Zipf and few-shot variants; the JSON, the wide table and the plot."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from odia.bench.common import open_warm_embedder
from odia.bench.router_promise import PromiseOptions, method_settings, run_router_promise
from odia_stream.datasets import write_jsonl
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent


def test_a_method_names_the_calibration_and_what_the_classifier_learns() -> None:
    settings = OdiaSettings()
    both = method_settings(settings, "grouped+simple").router
    assert (both.calibration, both.classifier_learns) == ("grouped", "simple")
    plain = method_settings(settings, "records").router
    assert (plain.calibration, plain.classifier_learns) == ("records", settings.router.classifier_learns)
    for bad in ("nearest", "records+most", "records+"):
        with pytest.raises(ValueError, match="unknown method"):
            method_settings(settings, bad)


@pytest.mark.slow  # learns and builds routers several times
def test_repeated_splits_report_the_promise_per_method_beside_the_baseline(
    tmp_path: Path, model_cache: Path, snips_events: list[FCLogEvent]
) -> None:
    sample = tmp_path / "snips-sample.jsonl"
    write_jsonl(snips_events[:300], sample)
    settings = OdiaSettings(state_dir=tmp_path / "state", model_cache_dir=model_cache)
    embedder = open_warm_embedder(settings)
    printed = io.StringIO()
    console = Console(file=printed, width=200)
    report = run_router_promise(settings, [sample], tmp_path / "out", PromiseOptions(seeds=2), embedder, console)
    saved = json.loads((tmp_path / "out" / "router_promise.json").read_text(encoding="utf-8"))
    assert saved["datasets"][0]["methods"].keys() == report["datasets"][0]["methods"].keys() == {
        "grouped", "records", "baseline", "baseline@target"}
    res = saved["datasets"][0]
    assert [r["seed"] for r in res["runs"]] == [0, 1]
    for run in res["runs"]:
        assert run["train"] + run["test"] == 300
        for row in [*run["methods"].values(), *run["baselines"].values()]:
            assert 0 <= row["coverage"] <= 1 and (row["precision"] is None or 0 <= row["precision"] <= 1)
        tuned = run["baselines"]["baseline@target"]
        assert tuned["precision"] is None or tuned["precision"] >= saved["target_precision"]
        assert (tuned["cut"] is None) == (tuned["routed"] == 0)
    for m in res["methods"].values():
        assert m["splits"] == 2 and 0 <= m["splits_at_target"] <= m["splits_routing"] <= 2
    assert (tmp_path / "out" / "router_promise.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Router promise over 2 splits" in printed.getvalue()

    # Production-like: 400 Zipf draws split by record (a popular query on both sides); few-shot: 20%.
    zipf = run_router_promise(settings, [sample], tmp_path / "zipf",
                              PromiseOptions(seeds=1, zipf=400, methods=("grouped",)), embedder, console)
    run = zipf["datasets"][0]["runs"][0]
    assert run["train"] + run["test"] == 400 and zipf["variant"] == " zipf 400"
    few = run_router_promise(settings, [sample], tmp_path / "few",
                             PromiseOptions(seeds=1, train_fraction=0.2, methods=("grouped", "records+simple")),
                             embedder, console)
    assert few["datasets"][0]["runs"][0]["train"] < 0.3 * 300
    assert few["datasets"][0]["methods"].keys() == {"grouped", "records+simple", "baseline", "baseline@target"}
