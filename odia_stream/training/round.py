"""One training round: learner snapshot → balanced set → LoRA → gate → registry → ``ModelUpdate``.

The round is the trainer's domain logic (no Kafka): the worker in ``trainer/`` feeds it the
retrain triggers it consumed and publishes the update it returns. Every round writes a JSON
report, whatever its outcome, before the worker commits the triggers.

A round that promotes nothing still updates the router serving uses: with a serving adapter, that
adapter is re-sent with a router of the round's learner state (``router_refreshed``); with none
(before the first promotion, or only one of another prompt format) and the template tier on, the
round sends a :class:`~schemas.RouterUpdate`: that router alone (``router_only``), so template
programs answer requests before any adapter passes the gate.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.atomic_files import write_json_atomic
from odia_stream.clustering.views import LearnerView
from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.protocol import AdapterRef, SmallGenerator
from odia_stream.prompting import prompt_format_version, render_record
from odia_stream.settings import OdiaSettings
from odia_stream.training.dataset import TrainingSet, build_training_set
from odia_stream.training.gate import EvalReport, GateDecision, evaluate_generator, gate, trusted_functions
from odia_stream.training.lora import LoraTrainResult, TrainingExample, train_lora
from schemas import ModelUpdate, RetrainTrigger, RouterUpdate

log = logging.getLogger("odia.trainer")

#: Builds the router paired with a promoted adapter:
#: ``(learner snapshot, adapter version, functions the adapter is trusted with) -> router version``;
#: adapter ``None`` with no trusted function: a router for the template tier alone.
RouterBuilder = Callable[[LearnerView, str | None, Collection[str] | None], str]

RoundStatus = Literal["promoted", "rejected", "skipped"]


@dataclass(frozen=True)
class RoundOutcome:
    """What a round did. ``update`` is set when an adapter was promoted, when a rejected round
    re-sends the serving adapter with a router built from the round's newer learner state, and
    when a round that promoted nothing, with no adapter serving, sends that router alone."""

    status: RoundStatus
    reason: str
    report_path: Path
    training_set: TrainingSet | None = None
    train: LoraTrainResult | None = None
    candidate: EvalReport | None = None
    current: EvalReport | None = None
    entry: AdapterEntry | None = None
    update: ModelUpdate | RouterUpdate | None = None
    #: The functions the adapter of ``update`` is trusted with (its paired router sends it no other).
    trusted: tuple[str, ...] = ()


def training_examples(training_set: TrainingSet, settings: OdiaSettings) -> list[TrainingExample]:
    """The supervised examples of a training set in the serving prompt format."""
    out = []
    for record in training_set.train:
        prompt, target = render_record(record, settings.prompt)
        out.append(TrainingExample(messages=prompt.messages, completion=target))
    return out


@dataclass
class TrainingRound:
    """Runs rounds against one loaded generator (for evaluation) and one adapter registry."""

    settings: OdiaSettings
    _: KW_ONLY
    generator: SmallGenerator
    registry: AdapterRegistry
    base_model_dir: Path
    #: Opens a read-only view of the learner's state (the round's training data).
    open_view: Callable[[], LearnerView]
    #: Builds the router snapshot paired with a promoted adapter (none: adapters only).
    router_builder: RouterBuilder | None = None

    @property
    def reports_dir(self) -> Path:
        """Where each round's report goes."""
        return self.settings.state_dir / "trainer" / "reports"

    # -- the round -------------------------------------------------------------------------------
    def run(self, triggers: Sequence[RetrainTrigger]) -> RoundOutcome:
        """Train, evaluate and maybe promote, for the coalesced ``triggers`` (one generator for all apps)."""
        started = datetime.now(UTC)
        round_id = started.strftime("%Y%m%dT%H%M%S%fZ")
        with self.open_view() as view:
            ts = build_training_set(view, None, self.settings.training_data, progress=True)
            distinct = sum(ts.stats.train_distinct.values())
            if distinct < self.settings.trainer.min_train_records:
                outcome = RoundOutcome(
                    "skipped", f"{distinct} distinct training records < trainer.min_train_records "
                    f"({self.settings.trainer.min_train_records})", Path(), training_set=ts)
            elif not ts.eval:
                outcome = RoundOutcome(
                    "skipped", "no held-out records to evaluate on (training_data.eval_share too small?)", Path(),
                    training_set=ts)
            else:
                work = Path(tempfile.mkdtemp(prefix="round-", dir=self._work_root()))
                try:
                    outcome = self._train_and_gate(ts, work, view)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
            if outcome.update is None:
                outcome = self._router_alone(view, outcome)
        return self._finish(round_id, triggers, started, outcome)

    def _work_root(self) -> Path:
        root = self.settings.state_dir / "trainer" / "work"
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _train_and_gate(self, ts: TrainingSet, work: Path, view: LearnerView) -> RoundOutcome:
        examples = training_examples(ts, self.settings)
        trained = train_lora(self.base_model_dir, examples, self.settings.trainer, work / "adapter", progress=True)
        sha = adapter_sha256(trained.adapter_dir)
        candidate_ref = AdapterRef(f"candidate-{sha[:12]}", trained.adapter_dir, sha, self.generator.base_model)
        serving = self.registry.current()
        candidate, current = asyncio.run(self._evaluate(ts, candidate_ref, serving))
        decision: GateDecision = gate(candidate, current, self.settings.trainer.eval_gate_accuracy)
        log.info("gate: %s", decision.reason)
        if not decision.promote:
            update, trusted = self._router_refresh(view, serving, current)
            return RoundOutcome(
                "rejected", decision.reason, Path(), ts, trained, candidate, current, serving if update else None,
                update, trusted,
            )
        trusted = trusted_functions(
            candidate, self.settings.trainer.function_accuracy_target, self.settings.router.calibration_z
        )
        log.info("adapter trusted with %d of %d functions: %s", len(trusted), len(candidate.by_function),
                 ", ".join(trusted) or "none (only the template tier answers without the large model)")
        metrics = {
            "eval_accuracy": round(candidate.accuracy, 6),
            "trusted_functions": float(len(trusted)),
            "eval_records": float(candidate.records),
            "train_records": float(len(examples)),
            "train_steps": float(trained.steps),
            "final_loss": round(trained.losses[-1], 6) if trained.losses else float("nan"),
        }
        if current is not None:
            metrics["serving_eval_accuracy"] = round(current.accuracy, 6)
        entry = self.registry.register(
            trained.adapter_dir, base_model=self.generator.base_model, eval_metrics=metrics,
            parent=serving.version if serving else None, prompt_format=prompt_format_version(self.settings.prompt),
        )
        router_version = self.router_builder(view, entry.version, trusted) if self.router_builder else None
        self.registry.promote(entry.version)
        update = AdapterRegistry.to_model_update(
            entry, self.settings.generator.name, previous_version=serving.version if serving else None
        ).model_copy(update={"router_version": router_version})
        return RoundOutcome("promoted", decision.reason, Path(), ts, trained, candidate, current, entry, update, trusted)

    def _router_refresh(
        self, view: LearnerView, serving: AdapterEntry | None, current: EvalReport | None
    ) -> tuple[ModelUpdate | None, tuple[str, ...]]:
        """The serving adapter again, paired with a router built from this round's learner state:
        a rejected candidate must not leave the router (its clusters, template programs and trust)
        on the state of the last promotion. The adapter is trusted with the functions its own
        evaluation on this round's held-out records proves. ``None`` without a serving adapter
        evaluated in this round's prompt format, or without a router builder."""
        if serving is None or current is None or self.router_builder is None:
            return None, ()
        trusted = trusted_functions(
            current, self.settings.trainer.function_accuracy_target, self.settings.router.calibration_z
        )
        router_version = self.router_builder(view, serving.version, trusted)
        log.info("serving adapter %s kept; its router refreshed to %s (trusted with %d functions)",
                 serving.version, router_version, len(trusted))
        update = AdapterRegistry.to_model_update(
            serving, self.settings.generator.name, previous_version=serving.version
        ).model_copy(update={"router_version": router_version})
        return update, trusted

    def _router_alone(self, view: LearnerView, outcome: RoundOutcome) -> RoundOutcome:
        """``outcome`` with a :class:`~schemas.RouterUpdate` when no adapter can serve (none promoted,
        or only one of another prompt format), the template tier is on and the learner state holds
        clusters; else ``outcome`` as it is."""
        serving = self.registry.current()
        usable = serving is not None and serving.prompt_format == prompt_format_version(self.settings.prompt)
        if usable or self.router_builder is None or not self.settings.templates.enabled or not view.clusters:
            return outcome
        router_version = self.router_builder(view, None, ())
        log.info("no adapter can serve yet; router %s sent alone (the template tier answers, the rest goes large)",
                 router_version)
        update = RouterUpdate(
            kind="router_only", generator=self.settings.generator.name, router_version=router_version,
            reason=f"round {outcome.status}: {outcome.reason}",
        )
        return dataclasses.replace(outcome, update=update, trusted=())

    async def _evaluate(
        self, ts: TrainingSet, candidate: AdapterRef, serving: AdapterEntry | None
    ) -> tuple[EvalReport, EvalReport | None]:
        bs = self.settings.trainer.eval_batch_size
        await self.generator.load_adapter(candidate)
        try:
            cand = await evaluate_generator(self.generator, ts.eval, self.settings.prompt, candidate, batch_size=bs,
                                            max_new_tokens=self.settings.small_answer_tokens)
        finally:
            await self.generator.unload_adapter(candidate.version)
        current = None
        fmt = prompt_format_version(self.settings.prompt)
        if serving is not None and serving.prompt_format != fmt:
            # Asked in a format it was not trained on, it would score unfairly low; serving refuses it anyway.
            log.info("serving adapter %s is in prompt format %d, not %d: not compared", serving.version,
                     serving.prompt_format, fmt)
        elif serving is not None:
            ref = serving.ref()
            if ref.version not in self.generator.loaded_versions():
                await self.generator.load_adapter(ref)
            current = await evaluate_generator(self.generator, ts.eval, self.settings.prompt, ref, batch_size=bs,
                                               max_new_tokens=self.settings.small_answer_tokens)
        return cand, current

    # -- report ----------------------------------------------------------------------------------
    def _finish(
        self, round_id: str, triggers: Sequence[RetrainTrigger], started: datetime, outcome: RoundOutcome
    ) -> RoundOutcome:
        ts = outcome.training_set
        report = {
            "round": round_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "triggers": [t.trigger_id for t in triggers],
            "training_set": None if ts is None else {
                "fingerprint": ts.fingerprint, "store_version": ts.store_version,
                "train": len(ts.train), "eval": len(ts.eval), "stats": ts.stats.model_dump(),
            },
            "train": None if outcome.train is None else {
                "steps": outcome.train.steps, "seconds": round(outcome.train.seconds, 2),
                "seconds_per_step": round(outcome.train.seconds_per_step, 3),
                "peak_rss_mb": round(outcome.train.peak_rss_mb, 1), "losses": [round(x, 5) for x in outcome.train.losses],
                "stop_reason": outcome.train.stop_reason,
            },
            "candidate_eval": outcome.candidate.as_dict() if outcome.candidate else None,
            "trusted_functions": list(outcome.trusted),
            "serving_eval": outcome.current.as_dict() if outcome.current else None,
            "model_update": json.loads(outcome.update.model_dump_json()) if outcome.update else None,
            # A rejected round that re-sent the serving adapter with a router of newer state.
            "router_refreshed": isinstance(outcome.update, ModelUpdate) and outcome.status == "rejected",
            # A round that promoted nothing sent a router with no adapter (no adapter can serve yet).
            "router_only": isinstance(outcome.update, RouterUpdate),
        }
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        path = self.reports_dir / f"round-{round_id}.json"
        write_json_atomic(path, report, sort_keys=False, ensure_ascii=False, default=str)
        log.info("round %s: %s (%s); report %s", round_id, outcome.status, outcome.reason, path)
        return dataclasses.replace(outcome, report_path=path)
