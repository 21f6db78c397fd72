"""What the benchmarks share: the machine they ran on, latency percentiles, a learner fed a
dataset, a dataset split into a learning part and a held-out part, and the JSON report."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from odia_stream.clustering import OffsetAlignedBatcher, OnlineClusterLearner, SourcedItem
from odia_stream.clustering.factory import open_embedder, open_learner
from odia_stream.datasets import detect_format, load_dataset, split_by_group
from odia_stream.embedding import Embedder
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent

__all__ = ["HeldOutSplit", "SplitOptions", "each_dataset", "fmt", "learn", "loadavg", "machine", "open_warm_embedder", "percentiles", "split_dataset", "write_report"]

T = TypeVar("T")


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages (``None`` where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine(**extra: Any) -> dict[str, Any]:
    """Platform, Python and CPU count, plus ``extra`` (e.g. ``loadavg_at_end=loadavg()``): a report's
    ``machine``."""
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(), **extra}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p99 and mean of ``values`` (in their unit), and how many there were."""
    a = np.asarray(values, dtype=float)
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean()), "n": len(a)}


def fmt(x: float | None, digits: int = 3) -> str:
    """A figure for a table (``–`` for none)."""
    return "–" if x is None else f"{x:.{digits}f}"


def learn(settings: OdiaSettings, events: Sequence[FCLogEvent], embedder: Embedder, desc: str) -> OnlineClusterLearner:
    """A learner under ``settings.state_dir`` fed ``events`` in offset-aligned micro-batches."""
    learner = open_learner(settings, embedder=embedder)
    batcher: OffsetAlignedBatcher[FCLogEvent] = OffsetAlignedBatcher(settings.clustering.batch_size)
    for i, ev in enumerate(tqdm(events, desc=desc, unit="event", leave=False)):
        for ready in batcher.add(SourcedItem("bench", 0, i, ev)):
            learner.process_batch(ready)
    for ready in batcher.flush():
        learner.process_batch(ready)
    return learner


@dataclass(frozen=True)
class SplitOptions:
    """How a benchmark splits a dataset: the held-out fraction, the seed, at most how many events."""

    test_fraction: float = 0.3
    seed: int = 0
    limit: int | None = None


@dataclass(frozen=True)
class HeldOutSplit:
    """A dataset split by group into a part to learn from and a held-out part."""

    format: str
    #: The clustering scope used (HammerBench is clustered per dialogue context).
    scope: str
    #: ``base`` with that scope.
    settings: OdiaSettings
    events: list[FCLogEvent]
    train: list[FCLogEvent]
    test: list[FCLogEvent]


def split_dataset(base: OdiaSettings, path: Path, options: SplitOptions) -> HeldOutSplit:
    """Read ``path`` (at most ``options.limit`` events) and split it by group (HammerBench by dialogue)."""
    fmt_ = detect_format(path)
    scope = "context" if fmt_ == "hammerbench" else base.clustering.scope
    settings = base.model_copy(update={"clustering": base.clustering.model_copy(update={"scope": scope})})
    events = list(load_dataset(path, limit=options.limit))
    train, test = split_by_group(events, test_fraction=options.test_fraction, seed=options.seed)
    return HeldOutSplit(fmt_, scope, settings, events, train, test)


def open_warm_embedder(settings: OdiaSettings) -> Embedder:
    """The settings' embedder, with one text embedded: a cached embedder with an empty cache is falsy
    (``__len__``), and ``open_learner`` treats a falsy embedder as none given, so every learner of a
    benchmark shares this one only once it holds a text."""
    embedder = open_embedder(settings)
    embedder.embed(["warm-up"])
    return embedder


def each_dataset(
    settings: OdiaSettings, datasets: Sequence[Path], work_dir: Path, bench_one: Callable[[Path, Embedder, Path], T]
) -> tuple[Embedder, list[T], float]:
    """``bench_one(path, embedder, work)`` for each dataset, on one warm embedder, each in its own
    folder under a fresh ``work_dir``; the embedder, the results and the seconds it all took."""
    if not datasets:
        raise ValueError("no datasets given")
    embedder = open_warm_embedder(settings)
    shutil.rmtree(work_dir, ignore_errors=True)
    started = time.perf_counter()
    results = [bench_one(Path(path), embedder, work_dir / f"{i}") for i, path in enumerate(datasets)]
    return embedder, results, time.perf_counter() - started


def write_report(path: Path, figures: dict[str, Any]) -> dict[str, Any]:
    """Write ``figures`` as indented UTF-8 JSON (creating the folder), after a ``machine`` entry
    with the load averages at the end of the run; returns what was written."""
    report = {"machine": machine(loadavg_at_end=loadavg()), **figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return report
