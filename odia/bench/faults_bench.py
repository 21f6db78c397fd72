"""``odia bench faults``: the ingest worker under faults, on a real local broker; nothing may be lost.

Each trial replays a sample of a dataset into fresh topics, runs the real ingest worker (its own
process, as in production), injects one fault, lets the worker catch up and then reads the
learner's audit (:mod:`odia_stream.clustering.audit`) and the dead-letter topic:

* ``none``: no fault (the baseline);
* ``worker_kill``: ``kill -9`` of the worker at a random moment while it has committed part of
  the stream, then a restart;
* ``oversized``: values of 0.5, 0.9, 1.0 and 1.6 MB (not UTF-8) after the events; the last is
  over Apache Kafka's default 1 MiB limit (a broker that refuses it makes the producer report it
  as ``refused``: it never was on the topic; the development broker takes it);
* ``broker_restart``: the broker stopped for a few seconds while the worker is mid-stream, then
  started again (its data kept).

Per trial: records the broker acknowledged (``in``), records with an outcome at their first
offset (``accounted``: accepted + duplicates + dead letters − reused offsets), ``lost`` = in −
accounted (must be 0), dead letters on the topic, whether the audit adds up, and the time from
the fault's end (restart, broker back; the worker's start for the other kinds) to the worker
having caught up (``recover_s``).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kafka_runtime.clients import TopicReader, group_lag
from kafka_runtime.local_broker import LocalBroker, free_port
from kafka_runtime.topics import ensure_topics
from odia.bench.common import write_report
from odia.replay_producer import ReplayProducer
from odia.runner import WorkerProcess, wait_caught_up
from odia_stream.clustering.audit import ACCEPTED, DUPLICATE, REUSED_OFFSET, audit_totals
from odia_stream.clustering.state_db import LearnerStateDB
from odia_stream.datasets import load_dataset
from odia_stream.figures import save_figure
from odia_stream.settings import IngestSettings, OdiaSettings, TopicSettings
from schemas import FCLogEvent

__all__ = ["FAULT_KINDS", "OVERSIZED_BYTES", "FaultTrial", "run_faults_bench"]

FAULT_KINDS = ("none", "worker_kill", "oversized", "broker_restart")
#: Sizes of the oversized values (bytes); the last one is over the broker's 1 MiB message limit.
OVERSIZED_BYTES = (500_000, 900_000, 1_000_000, 1_600_000)
#: How long the broker stays down in a ``broker_restart`` trial.
BROKER_DOWN_S = 4.0


@dataclass
class FaultTrial:
    """One trial's figures (see the module doc)."""

    kind: str
    seed: int
    produced: int
    refused: int
    records_in: int
    accounted: int
    lost: int
    dead_letters: int
    dlq_records: int
    adds_up: bool
    recover_s: float | None
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    #: Digest of the learned state (:meth:`LearnerStateDB.fingerprint`).
    state: str = ""
    #: Whether the state equals the no-fault trial's of the same seed (``None``: none was run).
    same_state_as_baseline: bool | None = None
    note: str = ""


def _settings(base: OdiaSettings, broker: LocalBroker, work: Path, name: str) -> OdiaSettings:
    suffix = f"{name}-{uuid.uuid4().hex[:6]}"
    return base.model_copy(update={
        "state_dir": work / name,
        "app_id": f"odia-faults-{suffix}",
        "topics": TopicSettings().with_suffix(suffix),
        "kafka": base.kafka.model_copy(update={"bootstrap_servers": broker.address}),
        "ingest": IngestSettings(metrics_port=None),
        "clustering": base.clustering.model_copy(update={"batch_timeout_s": 1.0}),
    })


def _wait_partly_committed(settings: OdiaSettings, worker: WorkerProcess, timeout_s: float = 300) -> None:
    """Until the worker has committed some, but not all, of the stream."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, lag = group_lag(settings.kafka, settings.app_id, settings.topics.fc_logs.name)
        if done > 0 and lag > 0:
            return
        if lag == 0 and done > 0:
            raise RuntimeError("the worker finished before the fault; replay more events")
        if not worker.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"worker not progressing:\n{worker.log_tail()}")
        time.sleep(0.1)


def _dlq_count(settings: OdiaSettings, expected: int, timeout_s: float = 20.0) -> int:
    """Dead-letter records on the topic (read until ``expected`` arrived or it stays quiet)."""
    got = 0
    with TopicReader(settings.kafka, settings.topics.dead_letters.name, paced=False) as reader:
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and not (got >= expected and time.monotonic() - quiet_since > 1.0):
            new = len(reader.poll(0.5))
            got += new
            if new:
                quiet_since = time.monotonic()
    return got


def run_trial(base: OdiaSettings, broker: LocalBroker, work: Path, events: list[FCLogEvent], kind: str, seed: int) -> FaultTrial:
    """One trial of ``kind`` (see the module doc)."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
    started = time.monotonic()
    settings = _settings(base, broker, work, f"{kind}-{seed}")
    ensure_topics(settings.kafka, settings.topics.all())
    rng = random.Random(seed)
    sample = rng.sample(events, len(events))
    with ReplayProducer(settings.kafka, settings.topics.fc_logs.name, config={"message.max.bytes": 4_000_000}) as p:
        stats = p.publish(sample)
        produced, records_in, refused, note = stats.produced, stats.sent, stats.failed, ""
        if kind == "oversized":
            big = [bytes([0x80 + i]) * size for i, size in enumerate(OVERSIZED_BYTES)]  # not UTF-8
            raw = p.publish_raw(big)
            produced += raw.produced
            records_in += raw.sent
            refused += raw.failed
            note = f"{raw.failed} of {len(big)} oversized values refused by the broker"
    worker = WorkerProcess(settings, settings.state_dir / f"{kind}.log")
    worker.start()
    recover_from = time.monotonic()
    try:
        if kind == "worker_kill":
            _wait_partly_committed(settings, worker)
            time.sleep(rng.uniform(0.0, 0.3))
            worker.kill()
            worker = WorkerProcess(settings, settings.state_dir / f"{kind}-restarted.log")
            worker.start()
            recover_from = time.monotonic()
        elif kind == "broker_restart":
            _wait_partly_committed(settings, worker)
            broker.down()
            time.sleep(BROKER_DOWN_S)
            broker.up()
            recover_from = time.monotonic()
        wait_caught_up(settings, worker, timeout_s=600)
        recover_s = time.monotonic() - recover_from
    finally:
        worker.stop()
    db = LearnerStateDB(settings.learner_dir / "learner.sqlite", read_only=True)
    try:
        audit = db.audit()
        state = db.fingerprint()
    finally:
        db.close()
    totals = audit_totals(audit)
    dead = sum(n for k, n in totals.items() if k.startswith("dead_letter:"))
    accounted = totals[ACCEPTED] + totals[DUPLICATE] + dead - totals[REUSED_OFFSET]
    return FaultTrial(
        kind=kind, seed=seed, produced=produced, refused=refused, records_in=records_in, accounted=accounted,
        lost=records_in - accounted, dead_letters=dead, dlq_records=_dlq_count(settings, dead),
        adds_up=bool(audit) and all(a.adds_up for a in audit), recover_s=recover_s,
        seconds=time.monotonic() - started, counts=dict(sorted(totals.items())), state=state, note=note,
    )


def run_faults_bench(
    base: OdiaSettings,
    dataset: Path,
    out_dir: Path,
    *,
    kinds: Sequence[str] = FAULT_KINDS,
    trials: int = 1,
    events: int = 600,
    seed: int = 0,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run ``trials`` trials of each fault kind on a broker of its own; writes ``faults.json`` and
    ``faults.png`` to ``out_dir`` and returns the report."""
    console = console or Console()
    pool = list(load_dataset(dataset, limit=events))
    work = out_dir / "work" / "faults"
    port = free_port()
    broker = LocalBroker(work / "broker", port=port)
    broker.up()
    results: list[FaultTrial] = []
    try:
        for kind in kinds:
            for t in range(trials):
                console.print(f"[bold]{kind}[/] trial {t + 1}/{trials} ({len(pool)} events)")
                results.append(run_trial(base, broker, work, pool, kind, seed + t))
        baseline = {r.seed: r.state for r in results if r.kind == "none"}
        for r in results:
            if r.kind != "none" and r.seed in baseline:
                r.same_state_as_baseline = r.state == baseline[r.seed]
    finally:
        broker.down()
    faults = Counter(r.kind for r in results if r.kind != "none")
    report = write_report(out_dir / "faults.json", {
        "dataset": str(dataset),
        "events_per_trial": len(pool),
        "trials_run": len(results),
        "faults_injected": dict(faults),
        "records_in": sum(r.records_in for r in results),
        "accounted": sum(r.accounted for r in results),
        "lost": sum(r.lost for r in results),
        "refused_by_broker": sum(r.refused for r in results),
        "all_add_up": all(r.adds_up for r in results),
        "states_differing_from_baseline": sum(r.same_state_as_baseline is False for r in results),
        "trials": [asdict(r) for r in results],
    })
    _plot(results, out_dir / "faults.png")
    print_table(report, console)
    return report


def print_table(report: dict[str, Any], console: Console) -> None:
    """The trials as a table, then the totals (LOST in red when anything was)."""
    table = Table("fault", "seed", "in", "accounted", "lost", "dead letters (DLQ)", "refused", "adds up", "recover s",
                  "state = no-fault run", title="Ingest under faults")
    for r in report["trials"]:
        table.add_row(
            r["kind"], str(r["seed"]), str(r["records_in"]), str(r["accounted"]),
            f"[red]{r['lost']}[/]" if r["lost"] else "0", f"{r['dead_letters']} ({r['dlq_records']})",
            str(r["refused"]), "yes" if r["adds_up"] else "[red]NO[/]",
            "–" if r["recover_s"] is None else f"{r['recover_s']:.1f}",
            {None: "–", True: "yes", False: "[yellow]no[/]"}[r["same_state_as_baseline"]],
        )
    console.print(table)
    lost = report["lost"]
    console.print(
        f"{report['trials_run']} trials, faults {report['faults_injected']}: {report['records_in']} records in, "
        f"{report['accounted']} accounted for, " + (f"[red]{lost} LOST[/]" if lost else "0 lost")
    )


def _plot(results: list[FaultTrial], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    labels = [f"{r.kind}\n#{r.seed}" for r in results]
    left.bar(labels, [r.records_in for r in results], label="in", color="#bbb")
    left.bar(labels, [r.accounted for r in results], label="accounted for", color="#2a7", width=0.5)
    left.bar(labels, [r.lost for r in results], label="lost", color="#c33", width=0.3)
    left.set_title("Records per trial")
    left.legend(fontsize=7)
    left.tick_params(axis="x", labelsize=7)
    right.bar(labels, [r.recover_s or 0.0 for r in results], color="#47a")
    right.set_title("Seconds to catch up after the fault")
    right.tick_params(axis="x", labelsize=7)
    save_figure(fig, path)
