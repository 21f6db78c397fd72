"""The trainer worker: retrain-triggers topic → :class:`~odia_stream.training.round.TrainingRound`
→ model-updates topic.

Triggers that arrive together (within ``trainer.coalesce_s``) are coalesced into one round.
Offsets are committed only after the round's outcome is out: its report written and its update
(a promoted adapter's ``ModelUpdate``, a router refresh, or a ``RouterUpdate`` while no adapter
can serve) flushed to the broker. A crash before that re-runs
the round; training is seeded and the registry is content-addressed, so the re-run registers the
same version again instead of a new one. A trigger that does not parse goes to the dead-letter
topic with its reason; a round that fails is reported and logged, and the worker goes on.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message
from pydantic import ValidationError

from kafka_runtime.clients import make_consumer, make_producer, member_id
from kafka_runtime.idle_pacing import IdlePacer
from kafka_runtime.publishing import PublishError, produce_model, publish_model
from kafka_runtime.topics import ensure_topics
from odia_stream.adapters.registry import open_registry
from odia_stream.clustering.factory import open_learner_view
from odia_stream.dead_letter_store import open_dead_letter_store
from odia_stream.generation.base_model import ensure_base_model
from odia_stream.serving.backends import evaluation_generator
from odia_stream.settings import OdiaSettings, get_settings
from odia_stream.training.round import RoundOutcome, RouterBuilder, TrainingRound
from schemas import DeadLetter, ModelUpdate, RetrainTrigger, RouterUpdate

log = logging.getLogger("odia.trainer")

#: How long one attempt to deliver a ModelUpdate (or any trainer message) may take.
PUBLISH_TIMEOUT_S = 30.0


@dataclass
class TrainerCounters:
    """What the worker did since it started."""

    #: Rounds per outcome status (``promoted``, ``rejected``, ``skipped``), and ``failed`` for a
    #: round that raised.
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: list[RoundOutcome] = field(default_factory=list)
    triggers: int = 0
    dead_lettered: int = 0

    @property
    def rounds(self) -> int:
        """Rounds run (each counted once its status is known)."""
        return self.statuses.total()


class TrainerWorker:
    """Consumes triggers, runs rounds, publishes updates; ``stop()`` ends ``run()`` between rounds."""

    def __init__(self, settings: OdiaSettings, *, router_builder: RouterBuilder | None = None) -> None:
        self.settings = settings
        self.counters = TrainerCounters()
        self._stop = threading.Event()
        ensure_topics(settings.kafka, settings.topics.all())
        base_dir = ensure_base_model(settings)
        self.generator = evaluation_generator(settings)
        self.round = TrainingRound(
            settings,
            generator=self.generator,
            registry=open_registry(settings),
            base_model_dir=base_dir,
            open_view=lambda: open_learner_view(settings),
            router_builder=router_builder,
        )
        self.consumer: Consumer | None = None
        self._pacer: IdlePacer | None = None
        self._consumer_config = {
            "group.instance.id": member_id(settings, "trainer"),
            # A round can take many minutes; the group must not evict the worker meanwhile.
            "max.poll.interval.ms": int(max(settings.trainer.max_minutes * 3, 30) * 60_000),
        }
        # A message not delivered within this time gets its (error) report, so a ModelUpdate that
        # publish() gave up on is no longer queued when it is sent again: never two copies.
        self.producer = make_producer(
            settings.kafka, {"enable.idempotence": True, "message.timeout.ms": int(PUBLISH_TIMEOUT_S * 1000)}
        )
        self.dead_letter_store = open_dead_letter_store(settings)

    def stop(self) -> None:
        """Ask ``run()`` to return after the current round."""
        self._stop.set()

    def _dead_letter(self, msg: Message, code: str, reason: str) -> None:
        letter = DeadLetter.of_record(
            code, reason, topic=msg.topic(), partition=msg.partition(), offset=msg.offset(), key=msg.key(),
            value=msg.value(), max_inline_bytes=self.settings.dead_letters.max_inline_bytes,
            store=self.dead_letter_store.put,
        )
        produce_model(self.producer, self.settings.topics.dead_letters.name, letter, msg.key())
        self.counters.dead_lettered += 1

    def _collect(self) -> tuple[list[Message], list[RetrainTrigger]]:
        """Block until a trigger arrives, then gather more for ``coalesce_s``."""
        msgs: list[Message] = []
        deadline: float | None = None
        while not self._stop.is_set():
            timeout = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            assert self._pacer is not None, "run() creates the consumer"
            batch = self._pacer.consume(100, timeout)
            for m in batch:
                if m.error() is None:
                    msgs.append(m)
                elif m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", m.error())
            if msgs and deadline is None:
                deadline = time.monotonic() + self.settings.trainer.coalesce_s
            if deadline is not None and time.monotonic() >= deadline:
                break
        triggers: list[RetrainTrigger] = []
        for m in msgs:
            try:
                triggers.append(RetrainTrigger.model_validate_json(m.value() or b""))
            except ValidationError as exc:
                self._dead_letter(m, "schema", f"not a RetrainTrigger: {exc.errors()[0]['msg']}")
        self.counters.triggers += len(triggers)
        return msgs, triggers

    def run_once(self, triggers: list[RetrainTrigger]) -> RoundOutcome | None:
        """One round for ``triggers`` (its update, if any, is for :meth:`publish`)."""
        try:
            outcome = self.round.run(triggers)
        except Exception:  # a bad round must not take the worker down
            log.error("round failed:\n%s", traceback.format_exc())
            self.counters.statuses["failed"] += 1
            return None
        self.counters.outcomes.append(outcome)
        self.counters.statuses[outcome.status] += 1
        return outcome

    def publish(self, update: ModelUpdate | RouterUpdate) -> bool:
        """Publish ``update`` and wait for the broker's acknowledgement; False (logged) when it was
        not delivered (the broker away): the caller tries again later."""
        try:
            publish_model(
                self.producer, self.settings.topics.model_updates.name, update, update.generator, PUBLISH_TIMEOUT_S + 5
            )
        except PublishError as exc:
            log.error("%s %s not published yet: %s", type(update).__name__, update.version or update.router_version, exc)
            return False
        log.info("published %s %s (router %s)", type(update).__name__, update.version or "with no adapter",
                 update.router_version)
        return True

    def run(self, max_rounds: int | None = None) -> TrainerCounters:
        """Consume until ``stop()`` (or ``max_rounds`` rounds); commits after each round's outcome is out."""
        self.consumer = make_consumer(self.settings.kafka, f"{self.settings.app_id}-trainer", self._consumer_config)
        self._pacer = IdlePacer(self.consumer, self.settings.kafka.idle_backoff_ms, self._stop)
        self.consumer.subscribe([self.settings.topics.retrain_triggers.name])
        #: An update the broker has not acknowledged yet: nothing is fetched or committed
        #: until it is out (retried with a growing wait), so its triggers are never committed past.
        pending: ModelUpdate | RouterUpdate | None = None
        wait_s = 1.0
        try:
            while not self._stop.is_set() and (
                pending is not None or max_rounds is None or self.counters.rounds < max_rounds
            ):
                if pending is not None:
                    if not self.publish(pending):
                        self._stop.wait(wait_s)
                        wait_s = min(30.0, wait_s * 2)
                        continue
                    pending, wait_s = None, 1.0
                else:
                    msgs, triggers = self._collect()
                    if not msgs:
                        continue
                    if triggers:
                        self._pacer.pause()  # no fetching while a round runs (it takes minutes)
                        outcome = self.run_once(triggers)
                        if outcome is not None and outcome.update is not None:
                            pending = outcome.update
                            continue
                remaining = self.producer.flush(30)
                if remaining:
                    log.error("%d messages not delivered; triggers stay uncommitted and will be re-run", remaining)
                    continue
                self.consumer.commit(asynchronous=False)
        finally:
            if pending is not None:
                log.error("stopped with %s %s unpublished; its triggers stay uncommitted", type(pending).__name__,
                          pending.version or pending.router_version)
            self.consumer.close()
            self.producer.flush(10)
        return self.counters


def default_router_builder(settings: OdiaSettings) -> RouterBuilder:
    """The router snapshot builder paired with every promoted adapter (embeds with the learner's embedder)."""
    from odia_stream.clustering.factory import open_embedder
    from odia_stream.routing.builder import router_builder

    return router_builder(settings, open_embedder(settings))


def run(settings: OdiaSettings | None = None, loglevel: str = "info") -> None:
    """Run the worker until SIGINT/SIGTERM."""
    settings = settings or get_settings()
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = TrainerWorker(settings, router_builder=default_router_builder(settings))
    handler: Callable[[int, object], None] = lambda *_: worker.stop()  # noqa: E731
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    worker.run()


def main() -> None:
    """``python -m trainer``."""
    run()
