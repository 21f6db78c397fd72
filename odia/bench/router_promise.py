"""``odia bench router --seeds N``: does the router keep its precision promise out of sample?

The promise: what the router sends small has the right function at least ``target_precision``
of the time. One split can be lucky, so each dataset is split ``seeds`` times (by query group,
the seed changing), a learner learns the training part and a router is built from it with each
method asked for (``records``: the per-record bound, the default; ``grouped``: evidence by query
group; either with ``+simple`` or ``+all``, what the classifier learns from); the held-out part is
routed. Reported per dataset and method:
delivered precision and coverage per split, their distribution (mean, standard deviation, min,
max) and the share of splits whose delivered precision reaches the target; beside them, measured
on the same splits, a **nearest-centroid baseline**: route to the nearest cluster's dominant
function when that cluster's dominant share is at least ``baseline_share`` (0.9); and the same
baseline at the promised precision (``baseline@target``: the share cut with the most coverage
whose delivered precision reaches the target, chosen on the held-out answers themselves).

Variants: ``zipf`` resamples each dataset to that many records with Zipf popularity (popular
queries recur) and splits *by record*, so popular queries fall on both sides, as in production;
``train_fraction`` keeps that share of the training groups (the few-shot regime).
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from odia.bench.common import fmt, learn, write_report
from odia_stream.datasets import detect_format, load_dataset, split_by_group
from odia_stream.datasets.zipf import zipf_resample
from odia_stream.embedding import Embedder
from odia_stream.figures import save_figure
from odia_stream.labels import NO_CALL
from odia_stream.routing import Router, build_snapshot, evaluate_decisions, request_of
from odia_stream.routing.calibration import choose_threshold
from odia_stream.routing.evaluation import recorded_function
from odia_stream.routing.lookup import MatrixClusterLookup
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent

__all__ = ["PromiseOptions", "best_cut", "method_settings", "nearest_centroid", "run_router_promise"]

METHODS = ("grouped", "records")
#: What the classifier learns from (``router.classifier_learns``); a method named ``records+simple``
#: calibrates with ``records`` and teaches the classifier only simple clusters' groups.
LEARNS = ("simple", "all")
#: The nearest-centroid baselines (:func:`nearest_centroid`).
BASELINES = ("baseline", "baseline@target")


def method_settings(settings: OdiaSettings, name: str) -> OdiaSettings:
    """``settings`` with the router set as method ``name`` says: ``<calibration>[+<classifier_learns>]``."""
    calibration, plus, learns = name.partition("+")
    if calibration not in METHODS or (plus and learns not in LEARNS):
        raise ValueError(f"unknown method {name!r}: use <{'|'.join(METHODS)}>[+{'|'.join(LEARNS)}]")
    update: dict[str, str] = {"calibration": calibration}
    if learns:
        update["classifier_learns"] = learns
    return settings.model_copy(update={"router": settings.router.model_copy(update=update)})


@dataclass(frozen=True)
class PromiseOptions:
    """What the promise benchmark repeats and varies."""

    seeds: int = 10
    test_fraction: float = 0.3
    #: Resample each dataset to this many records with Zipf popularity and split by record.
    zipf: int | None = None
    zipf_exponent: float = 1.1
    #: Share of the training groups kept (1.0: all).
    train_fraction: float = 1.0
    #: Methods compared: ``router.calibration`` values, each optionally ``+all`` or ``+simple``
    #: (``router.classifier_learns``; :func:`method_settings`).
    methods: tuple[str, ...] = METHODS
    #: The baseline routes to clusters whose dominant share is at least this.
    baseline_share: float = 0.9
    limit: int | None = None


def _split(events: list[FCLogEvent], options: PromiseOptions, seed: int) -> tuple[list[FCLogEvent], list[FCLogEvent]]:
    if options.zipf is not None:
        drawn = list(zipf_resample(events, options.zipf, exponent=options.zipf_exponent, seed=seed))
        rng = random.Random(seed)
        flags = [rng.random() < options.test_fraction for _ in drawn]
        train = [e for e, t in zip(drawn, flags, strict=True) if not t]
        test = [e for e, t in zip(drawn, flags, strict=True) if t]
    else:
        train, test = split_by_group(events, test_fraction=options.test_fraction, seed=seed)
    if options.train_fraction < 1.0:  # keep that share of the training groups
        _, train = split_by_group(train, test_fraction=options.train_fraction, seed=seed + 1000)
    return train, test


def _rates(right: int, routed: int, with_call: int) -> dict[str, float | None]:
    return {"precision": right / routed if routed else None, "coverage": right / with_call if with_call else 0.0,
            "routed": routed}


def nearest_centroid(
    router: Router, embedder: Embedder, test: Sequence[FCLogEvent], share: float, target: float
) -> dict[str, dict[str, Any]]:
    """The baselines: each held-out request goes small to its nearest cluster's dominant function
    (same scope) when that cluster's dominant share is at least a cut; precision and coverage.

    ``baseline``: the cut is ``share``. ``baseline@target``: the cut with the most coverage whose
    delivered precision on *these* requests reaches ``target``: chosen with the held-out answers
    in hand, so no method calibrated without them can do better at that cut; it says what nearest-
    centroid routing reaches at the promised precision (``cut`` is ``None`` when no cut does)."""
    table = router.snapshot.clusters
    lookup = MatrixClusterLookup(table.vectors, table.scopes)
    prepared = [router.prepare(request_of(e)) for e in test]
    vectors = embedder.embed([p.text for p in prepared]) if prepared else np.zeros((0, table.vectors.shape[1]))
    candidates: list[tuple[float, bool]] = []  # (the nearest cluster's dominant share, right)
    for ev, prep, vec in zip(test, prepared, vectors, strict=True):
        hit = lookup.nearest(np.asarray(vec, dtype=np.float32), prep.scope)
        if hit is None:
            continue
        function, size = table.functions[hit.row], int(table.sizes[hit.row])
        if function is None or function == NO_CALL or size == 0:
            continue
        candidates.append((float(table.dominant[hit.row]) / size, function == recorded_function(ev)))
    with_call = sum(e.call is not None for e in test)
    fixed = [right for s, right in candidates if s >= share]
    best = best_cut(candidates, target)
    return {"baseline": _rates(sum(fixed), len(fixed), with_call) | {"cut": share},
            "baseline@target": _rates(best[0], best[1], with_call) | {"cut": best[2]}}


def best_cut(candidates: Sequence[tuple[float, bool]], target: float) -> tuple[int, int, float | None]:
    """``(right, routed, cut)`` of the cut on the score that routes the most right answers while
    the routed ones are right at least ``target`` of the time (``(0, 0, None)`` when no cut is).

    >>> best_cut([(1.0, True), (0.95, True), (0.95, False), (0.9, True)], 0.7)
    (3, 4, 0.9)
    >>> best_cut([(1.0, True), (0.95, True), (0.95, False), (0.9, True)], 0.9)
    (1, 1, 1.0)
    >>> best_cut([(1.0, False)], 0.5)
    (0, 0, None)
    """
    if not candidates:
        return (0, 0, None)
    scores = [score for score, _ in candidates]
    cut = choose_threshold(scores, [float(ok) for _, ok in candidates], [1.0] * len(candidates), target=target, z=0)
    # The lowest passing cut routes the most, and so the most right answers.
    return (round(cut.correct), round(cut.routed), cut.value) if cut.enabled else (0, 0, None)


def _row(run: dict[str, Any], name: str) -> dict[str, Any]:
    return run["baselines"][name] if name in BASELINES else run["methods"][name]


def _summary(values: Sequence[float | None]) -> dict[str, float | None]:
    xs = [v for v in values if v is not None and not math.isnan(v)]
    if not xs:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": statistics.fmean(xs), "std": statistics.pstdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs)}


def promise_dataset(
    base: OdiaSettings, path: Path, embedder: Embedder, work_dir: Path, options: PromiseOptions, console: Console
) -> dict[str, Any]:
    """Every split of one dataset (see the module docstring)."""
    fmt_ = detect_format(path)
    scope = "context" if fmt_ == "hammerbench" else base.clustering.scope
    settings = base.model_copy(update={"clustering": base.clustering.model_copy(update={"scope": scope})})
    events = list(load_dataset(path, limit=options.limit))
    target = settings.router.target_precision
    runs: list[dict[str, Any]] = []
    for seed in range(options.seeds):
        train, test = _split(events, options, seed)
        t0 = time.perf_counter()
        learner = learn(settings.model_copy(update={"state_dir": work_dir / f"seed-{seed}"}), train, embedder,
                        f"{path.name} split {seed + 1}/{options.seeds}: learning")
        run: dict[str, Any] = {"seed": seed, "train": len(train), "test": len(test), "methods": {}}
        try:
            requests = [request_of(e) for e in test]
            router = None
            for method in options.methods:
                s = method_settings(settings, method)
                router = Router(build_snapshot(learner, s, embedder), embedder, s.router)
                ev = evaluate_decisions(test, router.decide_many(requests))
                run["methods"][method] = {
                    **_rates(ev.correct_small, ev.routed_small, ev.with_call),
                    "lower_bounds": {k: t.lower_bound for k, t in router.snapshot.thresholds.items() if t.enabled},
                    "by_stage": ev.by_stage,
                }
            assert router is not None
            run["baselines"] = nearest_centroid(router, embedder, test, options.baseline_share, target)
        finally:
            learner.close()
        run["seconds"] = time.perf_counter() - t0
        runs.append(run)
        shown = ", ".join(f"{m} {fmt(r['precision'], 4)} / {fmt(r['coverage'])}" for m, r in run["methods"].items())
        shown += "".join(f"; {b} {fmt(r['precision'], 4)} / {fmt(r['coverage'])}" for b, r in run["baselines"].items())
        console.print(f"{path.name} split {seed}: precision / coverage {shown}")
    out: dict[str, Any] = {"dataset": str(path), "scope": scope, "events": len(events), "target_precision": target,
                           "runs": runs, "methods": {}}
    for name in [*options.methods, *BASELINES]:
        rows = [_row(r, name) for r in runs]
        precisions = [r["precision"] for r in rows]
        out["methods"][name] = {
            "precision": _summary(precisions), "coverage": _summary([r["coverage"] for r in rows]),
            "splits_at_target": sum(1 for p in precisions if p is not None and p >= target),
            "splits_routing": sum(1 for p in precisions if p is not None), "splits": len(rows),
        }
    return out


def plot_promise(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Delivered precision against coverage, one point per split, per dataset and method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.5), squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        for name in res["methods"]:
            rows = [_row(r, name) for r in res["runs"]]
            pts = [(r["coverage"], r["precision"]) for r in rows if r["precision"] is not None]
            if pts:
                ax.scatter(*zip(*pts, strict=True), label=name, s=18, alpha=0.8)
        ax.axhline(res["target_precision"], color="grey", linestyle="--", linewidth=0.8, label="target")
        ax.set_title(Path(res["dataset"]).name)
        ax.set_xlabel("coverage (right small / requests with a call)")
        ax.set_ylabel("delivered precision")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def print_promise(report: dict[str, Any], console: Console) -> None:
    """One wide table: per dataset and method, the delivered precision and coverage over the splits."""
    t = Table("dataset", "method", "splits at target", "precision mean (min-max)", "coverage mean ± std (min-max)",
              title=f"Router promise over {report['options']['seeds']} splits (target {report['target_precision']})")
    for res in report["datasets"]:
        for name, m in res["methods"].items():
            p, c = m["precision"], m["coverage"]
            t.add_row(Path(res["dataset"]).name + report["variant"], name,
                      f"{m['splits_at_target']}/{m['splits']} ({m['splits_routing']} routing)",
                      f"{fmt(p['mean'], 4)} ({fmt(p['min'], 4)}-{fmt(p['max'], 4)})",
                      f"{fmt(c['mean'])} ± {fmt(c['std'])} ({fmt(c['min'])}-{fmt(c['max'])})")
    console.print(t)


def run_router_promise(
    settings: OdiaSettings, datasets: Sequence[Path], out_dir: Path, options: PromiseOptions, embedder: Embedder,
    console: Console,
) -> dict[str, Any]:
    """Run the promise benchmark; writes ``router_promise.json`` and ``router_promise.png``."""
    started = time.perf_counter()
    results = [promise_dataset(settings, Path(p), embedder, out_dir / "work" / "router-promise" / str(i), options, console)
               for i, p in enumerate(datasets)]
    variant = (f" zipf {options.zipf}" if options.zipf else "") + (
        f" train {options.train_fraction:g}" if options.train_fraction < 1 else "")
    report = write_report(out_dir / "router_promise.json", {
        "embedder": embedder.model_id, "target_precision": settings.router.target_precision,
        "variant": variant, "options": options.__dict__ | {"methods": list(options.methods)},
        "seconds": time.perf_counter() - started, "datasets": results,
    })
    plot_promise(results, out_dir / "router_promise.png")
    print_promise(report, console)
    console.print(f"wrote {out_dir / 'router_promise.json'} and {out_dir / 'router_promise.png'}")
    return report
