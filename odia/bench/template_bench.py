"""``odia bench templates``: the template tier on held-out data, and how fast it assembles.

Per dataset: split by group (as ``odia bench router``), train a learner on one part in-process,
build a router snapshot (which carries the live argument programs) and route the other part.
Every request the router sends small with a function is offered to the template tier
(:meth:`Router.template_answer`, as the serving engine does). Figures:

* share of held-out requests the template tier answers, and their agreement with the recorded
  call (AST match, :func:`~odia_stream.evaluation.ast_match.ast_match`, and plain name + arguments
  equality); on synthetic music also with the generator's truth (its recorded calls carry a
  deliberate large-model inconsistency);
* assembly latency p50/p99 (templating, lookup, assembly and validation of one request), over
  every request offered to the tier and over the answered ones (the latter is held to the target);
* why every other request fell through, summing with the answered ones to the held-out total;
* the router's small share on the same requests (what the small model would get), and the share
  and agreement of programs live at a sweep of targets, straight from the learner (no router).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from odia.bench.common import SplitOptions, each_dataset, learn, percentiles, split_dataset, write_report
from odia.bench.common import fmt as _f
from odia_stream.clustering import OnlineClusterLearner
from odia_stream.datasets.synthetic_music import (
    SyntheticMusicConfig,
    SyntheticMusicRecord,
    iter_music_records,
    parse_synthetic_spec,
)
from odia_stream.embedding import Embedder
from odia_stream.evaluation.ast_match import ast_match
from odia_stream.figures import save_figure
from odia_stream.keys import TemplatedQuery, TemplateKey
from odia_stream.routing import Router, build_snapshot, request_of
from odia_stream.settings import OdiaSettings
from odia_stream.templates import EntityDictionary, NormalizedText, is_learnable_value, occurs_in
from odia_stream.templates.learning import clean_value
from odia_stream.templates.programs import AssemblyError, Program
from schemas import FCLogEvent, FunctionCall, FunctionSpec, ToolSpec

__all__ = [
    "AGREEMENT_TARGET",
    "FALL_THROUGH",
    "P99_TARGET_MS",
    "SWEEP_TARGETS",
    "SYNTHETIC_SHARE_TARGET",
    "bench_dataset",
    "run_template_bench",
]

#: Program targets of the sweep (Wilson lower bound of the agreement, z = ``router.calibration_z``).
SWEEP_TARGETS = (0.99, 0.97, 0.95, 0.9)
#: Agreement of template answers with the recorded call, on every dataset.
AGREEMENT_TARGET = 0.99
#: Share of held-out synthetic-music requests the template tier should answer.
SYNTHETIC_SHARE_TARGET = 0.40
#: p99 of one template answer (templating included), milliseconds.
P99_TARGET_MS = 5.0
#: Why a held-out request was not answered by the template tier, in the order printed.
FALL_THROUGH = (
    "routed_large",
    "no_template_match",
    "unseen_entity_value",
    "no_valid_program:min_support",
    "no_valid_program:unexplained",
    "no_valid_program:lower_bound",
    "no_valid_program:no_call",
    "no_valid_program:not_routable",
    "other_function",
    "never_small",
    "missing_slot",
    "invalid_call",
    "error_budget",
)
_WARM_UP = 5


@dataclass(frozen=True)
class _Truth:
    """The synthetic generator's records of a dataset, by event id."""

    records: Mapping[str, SyntheticMusicRecord]
    inconsistency_share: float


@dataclass
class _Agreement:
    """Answers judged against a reference: how many, how many AST-match, how many are equal."""

    answered: int = 0
    ast: int = 0
    exact: int = 0

    def add(self, call: FunctionCall, expected: FunctionCall | None, tools: Sequence[ToolSpec]) -> None:
        """Judge one answer."""
        self.answered += 1
        tool = _tool(tools, expected.name) if expected is not None else None
        self.ast += ast_match(call, expected, tool).ok
        self.exact += expected is not None and call.name == expected.name and call.arguments == expected.arguments

    def figures(self) -> dict[str, float | int | None]:
        """Counts and shares (``None`` without answers)."""
        n = self.answered
        return {"answered": n, "ast_matches": self.ast, "exact_matches": self.exact,
                "ast": self.ast / n if n else None, "exact": self.exact / n if n else None}


def _tool(tools: Sequence[ToolSpec], name: str) -> FunctionSpec | None:
    return next((t.function for t in tools if t.function.name == name), None)


def _label(path: Path) -> str:
    """A short dataset name: the spec of a synthetic one, else the path below ``datasets/``."""
    parts = Path(path).parts
    if str(path).startswith("synthetic:"):
        return str(path)
    if "datasets" in parts:
        return "/".join(parts[parts.index("datasets") + 1:])
    return Path(path).name


def synthetic_truth(path: Path, count: int) -> _Truth:
    """The first ``count`` records of a ``synthetic:`` spec (the generator is a stream: the
    events :func:`load_dataset` read are its prefix), with the spec's inconsistency share."""
    _, options = parse_synthetic_spec(path)
    options.pop("n", None)
    seed = options.pop("seed", 0)
    records = itertools.islice(iter_music_records(None, seed=seed, **options), count)
    return _Truth({r.event.event_id: r for r in records}, SyntheticMusicConfig(**options).inconsistency_share)


def has_unseen_entity(event: FCLogEvent, dictionary: EntityDictionary | None) -> bool:
    """Whether the recorded call has a string argument that occurs in the query (as entity
    learning would see it) but is no entry of ``dictionary`` under any type."""
    if event.call is None:
        return False
    text = NormalizedText.of(event.query)
    for raw in event.call.arguments.values():
        if not isinstance(raw, str):
            continue
        value = clean_value(raw)
        if is_learnable_value(value) and occurs_in(text, value) and (dictionary is None or not dictionary.types_of(value)):
            return True
    return False


def _invalid_category(program: Program, min_support: int) -> str:
    """Why a program is not valid, as in :func:`~odia_stream.templates.programs.best_program`."""
    if program.support < min_support:
        return "min_support"
    if program.unexplained:
        return "unexplained"
    return "lower_bound"


def _no_program_reason(
    key: TemplateKey,
    event: FCLogEvent,
    learner: OnlineClusterLearner,
    programs: Mapping[TemplateKey, Program],
    dictionary: EntityDictionary | None,
    min_support: int,
) -> str:
    """Why the snapshot holds no program for a request's template (a ``no_program`` miss)."""
    if key not in learner.template_evidence:
        return "unseen_entity_value" if has_unseen_entity(event, dictionary) else "no_template_match"
    program = programs.get(key)
    if program is None:
        return "no_valid_program:no_call"
    if program.valid:
        return "no_valid_program:not_routable"  # valid, but its function may not go small
    return "no_valid_program:" + _invalid_category(program, min_support)


def program_sweep(
    learner: OnlineClusterLearner,
    events: Sequence[FCLogEvent],
    *,
    targets: Sequence[float],
    z: float,
    truth: _Truth | None,
) -> list[dict[str, Any]]:
    """Share and agreement of the programs live at each target, from the learner alone: each
    held-out query templated with its app's templater, its template's program assembled."""
    scope = learner.settings.scope
    prepared = [TemplatedQuery.of_record(ev, scope, learner.templater_of(ev.app)) for ev in events]
    rows = []
    for target, families in itertools.product(targets, (False, True)):
        programs = learner.template_programs(target=target, z=z, pool=families)
        recorded, true = _Agreement(), _Agreement()
        missing_slot = 0
        for ev, q in zip(events, prepared, strict=True):
            program = programs.get((q.app, q.scope, q.text))
            if program is None or not program.valid:
                continue
            try:
                arguments = program.assemble(q.template.slots, learner.dictionary_of(ev.app))
            except AssemblyError:
                missing_slot += 1
                continue
            call = FunctionCall(name=program.function, arguments=arguments)
            recorded.add(call, ev.call, ev.tools)
            if truth is not None:
                true.add(call, truth.records[ev.event_id].intended_call, ev.tools)
        rows.append({
            "target": target,
            "families": families,
            "live_programs": sum(p.valid for p in programs.values()),
            "pooled_programs": sum(p.pooled for p in programs.values()),
            "programs": len(programs),
            "share": recorded.answered / len(events) if events else 0.0,
            "missing_slot": missing_slot,
            "agreement": recorded.figures(),
            "agreement_truth": true.figures() if truth is not None else None,
        })
    return rows


def _verdict(value: float | None, target: float, *, below: bool = False, none: str = "") -> dict[str, Any]:
    """A target and whether ``value`` meets it (``None``: missed, ``none`` says why there is no value)."""
    met = value is not None and (value < target if below else value >= target)
    return {"value": value, "target": target, "met": met, **({"why_no_value": none} if value is None else {})}


def bench_dataset(
    base: OdiaSettings, path: Path, embedder: Embedder, work_dir: Path, options: SplitOptions,
    *,
    console: Console,
) -> tuple[dict[str, Any], list[float]]:
    """Every figure of one dataset (see the module doc), and the latency of each template answer (ms)."""
    split = split_dataset(base, path, options)
    fmt, scope, events, train, test = split.format, split.scope, split.events, split.train, split.test
    settings = split.settings.model_copy(update={"state_dir": work_dir / "train"})
    rs = settings.router
    truth = synthetic_truth(path, len(events)) if fmt == "synthetic" else None
    if truth is not None and any(e.event_id not in truth.records for e in test):
        console.print(f"[yellow]{path}: the generator's records do not cover the held-out events; no truth figures[/]")
        truth = None
    label = _label(path)
    console.print(f"[bold]{label}[/]: {len(train)} train / {len(test)} held-out events (scope {scope})")
    t0 = time.perf_counter()
    learner = learn(settings, train, embedder, "learning (train part)")
    learn_s = time.perf_counter() - t0
    try:
        b0 = time.perf_counter()
        snapshot = build_snapshot(learner, settings, embedder, progress=True)
        build_s = time.perf_counter() - b0
        router = Router(snapshot, embedder, rs)
        min_support = settings.templates.min_support
        programs = learner.template_programs(target=rs.target_precision, z=rs.calibration_z)
        requests = [request_of(e) for e in test]
        decisions = router.decide_many(requests)
        # HammerBench's large model calls with partial arguments and asks for the rest: a slot-filling
        # app, served with ``require_all_arguments`` off.
        check_required = settings.serving.require_all_arguments and fmt != "hammerbench"
        small = [i for i, d in enumerate(decisions) if d.route == "small"]
        for i in small[:_WARM_UP]:
            router.template_answer(requests[i], decisions[i].function, check_required=check_required)
        fall: Counter[str] = Counter({k: 0 for k in FALL_THROUGH})
        recorded, true = _Agreement(), _Agreement()
        latency_all: list[float] = []
        latency_answered: list[float] = []
        templating: list[float] = []
        answered_inconsistent = large_with_program = 0
        for ev, req, d in tqdm(list(zip(test, requests, decisions, strict=True)), desc="template tier",
                               unit="request", leave=False):
            p0 = time.perf_counter()
            prep = router.prepare(req)
            templating.append((time.perf_counter() - p0) * 1000.0)
            key = (prep.app, prep.scope, prep.text)
            if d.route != "small":
                fall["routed_large"] += 1
                large_with_program += router.templates.program_of(prep) is not None
                continue
            a0 = time.perf_counter()
            answer = router.template_answer(req, d.function, check_required=check_required)
            ms = (time.perf_counter() - a0) * 1000.0
            latency_all.append(ms)
            if answer.call is None:
                miss = answer.miss or "unknown"
                if miss == "no_program":
                    miss = _no_program_reason(key, ev, learner, programs, snapshot.dictionaries.get(ev.app), min_support)
                fall[miss] += 1
                continue
            latency_answered.append(ms)
            recorded.add(answer.call, ev.call, ev.tools)
            if truth is not None:
                rec = truth.records[ev.event_id]
                true.add(answer.call, rec.intended_call, ev.tools)
                answered_inconsistent += rec.inconsistent
        sweep = program_sweep(learner, test, targets=SWEEP_TARGETS, z=rs.calibration_z, truth=truth)
        n = len(test)
        share = recorded.answered / n if n else 0.0
        agreement = recorded.figures()
        assembled = percentiles(latency_answered) if latency_answered else None
        result: dict[str, Any] = {
            "dataset": str(path), "label": label, "format": fmt, "scope": scope,
            "train_events": len(train), "test_events": n, "learn_seconds": learn_s, "build_seconds": build_s,
            "check_required": check_required,
            "programs": {"templates": len(learner.template_evidence), "with_program": len(programs),
                         "valid": sum(p.valid for p in programs.values()), "in_snapshot": len(snapshot.programs)},
            "router_small": len(small), "router_small_share": len(small) / n if n else 0.0,
            "answered": recorded.answered, "share": share,
            "small_model_share": (len(small) - recorded.answered) / n if n else 0.0,
            "agreement": agreement,
            "truth": None if truth is None else {
                "agreement": true.figures(), "inconsistency_share": truth.inconsistency_share,
                "answered_inconsistent": answered_inconsistent,
            },
            "latency_ms": {"all": percentiles(latency_all) if latency_all else None, "answered": assembled,
                           "templating_alone": percentiles(templating) if templating else None},
            "fall_through": dict(fall),
            "routed_large_with_live_program": large_with_program,
            "sweep": sweep,
        }
        targets = {"agreement": _verdict(agreement["exact"], AGREEMENT_TARGET, none="nothing answered"),
                   # Judged on the answers actually assembled (misses stop at the lookup and are faster).
                   "p99_ms": _verdict(None if assembled is None else assembled["p99"], P99_TARGET_MS, below=True,
                                      none="nothing answered")}
        if truth is not None:
            targets["agreement_truth"] = _verdict(true.figures()["exact"], AGREEMENT_TARGET, none="nothing answered")
            targets["share"] = _verdict(share, SYNTHETIC_SHARE_TARGET)
        result["targets"] = targets
        return result, latency_all
    finally:
        learner.close()


def plot(results: Sequence[dict[str, Any]], latencies: Sequence[Sequence[float]], path: Path) -> None:
    """Assembly latency distribution per dataset (left) and shares per dataset (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for res, lat in zip(results, latencies, strict=True):
        if lat:
            bins = np.logspace(np.log10(max(min(lat), 1e-3)), np.log10(max(lat) * 1.01 + 1e-3), 40)
            left.hist(lat, bins=bins, histtype="step", linewidth=1.4, label=res["label"])
    left.axvline(P99_TARGET_MS, color="red", linestyle="--", linewidth=0.8, label=f"p99 target {P99_TARGET_MS} ms")
    left.set_xscale("log")
    left.set_xlabel("template answer, ms (templating, lookup, assembly, validation)")
    left.set_ylabel("requests")
    left.set_title("Assembly latency")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    x = np.arange(len(results))
    series = [("router small", "router_small_share"), ("template tier", "share")]
    width = 0.8 / (len(series) + len(SWEEP_TARGETS))
    for k, (name, field) in enumerate(series):
        right.bar(x + k * width, [r[field] for r in results], width, label=name)
    for j, target in enumerate(SWEEP_TARGETS):
        shares = [next(row["share"] for row in r["sweep"] if row["target"] == target and row["families"])
                  for r in results]
        right.bar(x + (len(series) + j) * width, shares, width, label=f"programs at {target} (families)", alpha=0.55)
    right.axhline(SYNTHETIC_SHARE_TARGET, color="grey", linestyle="--", linewidth=0.8,
                  label=f"synthetic share target {SYNTHETIC_SHARE_TARGET:.0%}")
    right.set_xticks(x + 0.4 - width / 2, [r["label"] for r in results], fontsize=8)
    right.set_ylim(0, 1)
    right.set_ylabel("share of held-out requests")
    right.set_title("Answered from templates")
    right.legend(fontsize=7)
    right.grid(alpha=0.3, axis="y")
    save_figure(fig, path)


def _ms(p: Mapping[str, float] | None) -> str:
    return "–" if p is None else f"{p['p50']:.3f} / {p['p99']:.3f}"


def print_tables(report: Mapping[str, Any], console: Console) -> None:
    """The figures as tables, the targets with MISSED where missed."""
    t = Table("dataset", "held-out", "router small", "template tier", "small model gets", "agreement (AST)",
              "agreement (exact)", "vs truth (exact)", "answer p50 / p99 ms", "answered only", "templating alone",
              title="Template tier on held-out data")
    for r in report["datasets"]:
        truth = r["truth"]["agreement"]["exact"] if r["truth"] else None
        t.add_row(r["label"], str(r["test_events"]), _f(r["router_small_share"]),
                  f"{_f(r['share'])} ({r['answered']})", _f(r["small_model_share"]), _f(r["agreement"]["ast"], 4),
                  _f(r["agreement"]["exact"], 4), _f(truth, 4), _ms(r["latency_ms"]["all"]),
                  _ms(r["latency_ms"]["answered"]), _ms(r["latency_ms"]["templating_alone"]))
    console.print(t)
    ft = Table("reason", *[r["label"] for r in report["datasets"]], title="Why the rest fell through (requests)")
    ft.add_row("[green]answered from template[/]", *[str(r["answered"]) for r in report["datasets"]])
    reasons = list(FALL_THROUGH) + sorted({k for r in report["datasets"] for k in r["fall_through"]} - set(FALL_THROUGH))
    for reason in reasons:
        ft.add_row(reason, *[str(r["fall_through"].get(reason, 0)) for r in report["datasets"]])
    ft.add_row("[dim](routed large, live program)[/]",
               *[str(r["routed_large_with_live_program"]) for r in report["datasets"]])
    console.print(ft)
    st = Table("dataset", "target", "evidence", "live programs (by family)", "share", "agreement (AST)",
               "agreement (exact)", "vs truth (exact)",
               title="Programs live at each target (learner only, no router): own evidence, or with families")
    for r in report["datasets"]:
        for row in r["sweep"]:
            tr = row["agreement_truth"]["exact"] if row["agreement_truth"] else None
            st.add_row(r["label"], f"{row['target']}", "families" if row["families"] else "own",
                       f"{row['live_programs']} ({row['pooled_programs']}) / {row['programs']}", _f(row["share"]),
                       _f(row["agreement"]["ast"], 4), _f(row["agreement"]["exact"], 4), _f(tr, 4))
    console.print(st)
    tt = Table("dataset", "target", "value", "verdict", title="Targets")
    names = {"agreement": f"agreement (exact, recorded) ≥ {AGREEMENT_TARGET}",
             "agreement_truth": f"agreement (exact, generator truth) ≥ {AGREEMENT_TARGET}",
             "share": f"template share ≥ {SYNTHETIC_SHARE_TARGET:.0%}",
             "p99_ms": f"answered p99 < {P99_TARGET_MS} ms (templating included)"}
    for r in report["datasets"]:
        for key, v in r["targets"].items():
            value = f"– ({v['why_no_value']})" if v["value"] is None else _f(v["value"], 4)
            tt.add_row(r["label"], names[key], value, "[green]met[/]" if v["met"] else "[bold red]MISSED[/]")
    console.print(tt)
    for r in report["datasets"]:
        if r["truth"]:
            console.print(
                f"[italic]{r['label']}: the recorded calls carry a deliberate large-model inconsistency "
                f"(inconsistency_share = {r['truth']['inconsistency_share']}): {r['truth']['answered_inconsistent']} "
                f"of the {r['answered']} answered requests were recorded with a wrong call; agreement with the "
                "generator's truth is the fair figure there.[/]"
            )


def run_template_bench(
    settings: OdiaSettings,
    datasets: Sequence[Path],
    out_dir: Path,
    *,
    split: SplitOptions = SplitOptions(),
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the benchmark on each dataset; writes ``templates.json`` and ``templates.png``."""
    console = console or Console()
    embedder, pairs, seconds = each_dataset(
        settings, datasets, out_dir / "work" / "templates",
        lambda path, embedder, work: bench_dataset(settings, path, embedder, work, split, console=console),
    )
    results, latencies = [r for r, _ in pairs], [lat for _, lat in pairs]
    report = write_report(out_dir / "templates.json", {
        "embedder": embedder.model_id,
        "target_precision": settings.router.target_precision,
        "calibration_z": settings.router.calibration_z,
        "template_settings": settings.templates.model_dump(mode="json"),
        "targets": {"agreement": AGREEMENT_TARGET, "synthetic_share": SYNTHETIC_SHARE_TARGET, "p99_ms": P99_TARGET_MS},
        "seconds": seconds,
        "datasets": results,
    })
    plot(results, latencies, out_dir / "templates.png")
    print_tables(report, console)
    console.print(f"wrote {out_dir / 'templates.json'} and {out_dir / 'templates.png'}")
    return report
