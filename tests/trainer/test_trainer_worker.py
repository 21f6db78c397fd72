"""The trainer worker end to end: real learner state, real SmolLM2 + LoRA, real broker.

A retrain trigger on the topic → one round: balanced set, a few LoRA steps, the AST-match gate,
a content-addressed adapter in the registry and a ``ModelUpdate`` on the model-updates topic.
A second round that fails the gate is refused after being compared with the serving adapter;
the "not worse than serving" rule itself is unit-tested in ``test_gate_rules``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
from confluent_kafka import Producer

from kafka_runtime.local_broker import free_port
from kafka_runtime.topics import ensure_topics
from odia_stream.adapters.registry import open_registry
from odia_stream.clustering import SourcedItem
from odia_stream.clustering.factory import open_learner
from odia_stream.generation.adapter_digest import adapter_sha256, version_of
from odia_stream.routing import load_snapshot
from odia_stream.routing.builder import snapshot_root
from odia_stream.settings import OdiaSettings
from odia_stream.training.gate import EvalReport, gate, trusted_functions
from schemas import FCLogEvent, ModelUpdate, RetrainTrigger, RouterUpdate, parse_serving_update
from trainer.worker import TrainerWorker, default_router_builder

pytestmark = pytest.mark.slow


def _trainer_settings(settings: OdiaSettings, tmp_path: Path, **trainer: object) -> OdiaSettings:
    return settings.model_copy(update={
        "trainer": settings.trainer.model_copy(update={
            "max_steps": 2, "batch_size": 4, "learning_rate": 3e-3, "max_seq_len": 256,
            "eval_gate_accuracy": 0.0, "min_train_records": 8, "coalesce_s": 0.5, "torch_threads": 2, **trainer,
        }),
        "training_data": settings.training_data.model_copy(update={
            "max_per_function": 8, "min_per_function": 4, "max_eval_per_function": 1, "eval_share": 0.2,
        }),
        "generator": settings.generator.model_copy(update={"max_new_tokens": 40, "torch_threads": 2}),
    })


def _trigger(n: int) -> RetrainTrigger:
    return RetrainTrigger(
        trigger_id=f"t{n}", app="default", reason="manual", new_examples=1, total_examples=1,
        simple_clusters=1, store_version=1, embedder_id="test",
    )


def _publish(settings: OdiaSettings, trigger: RetrainTrigger) -> None:
    p = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    p.produce(settings.topics.retrain_triggers.name, key=trigger.app.encode(), value=trigger.model_dump_json())
    p.produce(settings.topics.retrain_triggers.name, key=b"default", value=b"{not a trigger")
    assert p.flush(10) == 0


def test_trigger_to_gated_content_addressed_model_update(
    settings: OdiaSettings, tmp_path: Path, snips_events: list[FCLogEvent], read_topic: Callable[..., list]
) -> None:
    s = _trainer_settings(settings, tmp_path)
    ensure_topics(s.kafka, s.topics.all())
    learner = open_learner(s)
    events = snips_events[:700]
    for i in range(0, len(events), 256):
        learner.process_batch([SourcedItem("t", 0, j, e) for j, e in enumerate(events[i : i + 256], start=i)])
    learner.close()

    worker = TrainerWorker(s)
    _publish(s, _trigger(1))
    counters = worker.run(max_rounds=1)
    assert counters.statuses["promoted"] == 1, counters.outcomes[-1].reason if counters.outcomes else counters
    assert counters.dead_lettered == 1
    outcome = counters.outcomes[-1]
    assert outcome.candidate is not None and outcome.candidate.records > 0
    assert outcome.report_path.is_file()

    updates = [ModelUpdate.model_validate_json(v) for _, v in read_topic(s.kafka.bootstrap_servers, s.topics.model_updates.name)]
    mine = [u for u in updates if u.version == outcome.update.version]  # type: ignore[union-attr]
    assert len(mine) == 1
    update = mine[0]
    adapter_dir = Path(urlparse(update.adapter_uri).path)
    assert adapter_sha256(adapter_dir) == update.sha256 and update.version == version_of(update.sha256)
    assert update.eval_metrics["eval_accuracy"] == pytest.approx(outcome.candidate.accuracy, abs=1e-6)
    registry = open_registry(s)
    assert registry.current().version == update.version  # type: ignore[union-attr]

    # The next round is held to a gate it cannot pass: it is refused, evaluated against the serving
    # adapter on the same held-out records, and the registry keeps serving the promoted version.
    # The serving adapter is sent again with a router built from the round's learner state (real
    # builder), trusted with what its own evaluation proves.
    worker.round.settings = worker.settings = _trainer_settings(settings, tmp_path, max_steps=1, eval_gate_accuracy=1.0)
    worker.round.router_builder = default_router_builder(worker.settings)
    _publish(s, _trigger(2))
    counters = worker.run(max_rounds=2)
    second = counters.outcomes[-1]
    assert second.status == "rejected", second.reason
    assert second.current is not None and second.candidate is not None
    assert second.current.version == update.version and second.current.records == second.candidate.records
    assert registry.current().version == update.version  # type: ignore[union-attr]
    refreshed = second.update
    assert refreshed is not None and refreshed.version == update.version and refreshed.router_version is not None
    assert refreshed.sha256 == update.sha256 and refreshed.previous_version == update.version
    wt = worker.settings.trainer
    assert second.trusted == tuple(trusted_functions(second.current, wt.function_accuracy_target,
                                                     worker.settings.router.calibration_z))
    snapshot = load_snapshot(snapshot_root(worker.settings) / refreshed.router_version)
    assert snapshot.adapter_version == update.version and snapshot.model_functions == tuple(sorted(second.trusted))
    published = [ModelUpdate.model_validate_json(v)
                 for _, v in read_topic(s.kafka.bootstrap_servers, s.topics.model_updates.name)]
    assert published[-1].router_version == refreshed.router_version and published[-1].version == update.version
    report = json.loads(second.report_path.read_text(encoding="utf-8"))
    assert report["status"] == "rejected" and report["router_refreshed"] is True


def test_a_round_that_promotes_nothing_with_no_adapter_sends_the_router_alone(
    settings: OdiaSettings, tmp_path: Path, snips_events: list[FCLogEvent], read_topic: Callable[..., list]
) -> None:
    """Before any adapter passes the gate, the template tier must still reach serving: a round that
    promotes nothing (here: too few records to train) sends a router built with no adapter and no
    trusted function. With the template tier off it sends nothing."""
    s = _trainer_settings(settings, tmp_path, min_train_records=100_000)
    ensure_topics(s.kafka, s.topics.all())
    learner = open_learner(s)
    learner.process_batch([SourcedItem("t", 0, j, e) for j, e in enumerate(snips_events[:300])])
    learner.close()
    worker = TrainerWorker(s, router_builder=default_router_builder(s))
    _publish(s, _trigger(1))
    counters = worker.run(max_rounds=1)
    outcome = counters.outcomes[-1]
    assert outcome.status == "skipped" and isinstance(outcome.update, RouterUpdate), outcome
    assert outcome.update.generator == s.generator.name and "min_train_records" in outcome.update.reason
    published = [parse_serving_update(v) for _, v in read_topic(s.kafka.bootstrap_servers, s.topics.model_updates.name)]
    assert published == [outcome.update]
    snapshot = load_snapshot(snapshot_root(s) / outcome.update.router_version)
    assert snapshot.adapter_version is None and snapshot.model_functions == ()
    report = json.loads(outcome.report_path.read_text(encoding="utf-8"))
    assert report["router_only"] is True and report["router_refreshed"] is False and report["trusted_functions"] == []

    off = s.model_copy(update={"templates": s.templates.model_copy(update={"enabled": False})})
    worker.round.settings = worker.settings = off
    _publish(s, _trigger(2))
    counters = worker.run(max_rounds=2)
    assert counters.outcomes[-1].status == "skipped" and counters.outcomes[-1].update is None


def test_gate_rules() -> None:
    def report(correct: int, n: int = 10, version: str | None = "x") -> EvalReport:
        return EvalReport(version, n, correct, {}, {}, 0.0)

    assert gate(report(9), None, 0.9).promote
    assert not gate(report(8), None, 0.9).promote
    assert not gate(report(9), report(10, version="cur"), 0.5).promote
    assert gate(report(10), report(10, version="cur"), 0.5).promote
    assert not gate(report(0, n=0), None, 0.0).promote


def test_a_model_update_the_broker_did_not_take_is_published_again_once_it_can(
    settings: OdiaSettings, tmp_path: Path, read_topic: Callable[..., list], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 17: the trainer's producer survives a broker outage. An update that is not
    acknowledged is reported (False, logged), expired from the producer's queue, and delivered
    exactly once when published again with the broker reachable."""
    import gc

    import trainer.worker as trainer_worker
    from kafka_runtime.clients import make_producer

    s = _trainer_settings(settings, tmp_path)
    worker = TrainerWorker(s)
    update = ModelUpdate(
        generator="small", version="a-0123456789ab", adapter_uri="file:///nowhere", sha256="0" * 64,
        base_model="SmolLM2-135M-Instruct",
    )
    real = worker.producer
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setattr(trainer_worker, "PUBLISH_TIMEOUT_S", 1.0)
    worker.producer = make_producer(dead, {"enable.idempotence": True, "message.timeout.ms": 1000})
    assert worker.publish(update) is False
    # The producer reported the message expired (its delivery report, not our deadline): librdkafka
    # will not deliver that copy later. (len(producer) may still count its own connection requests.)
    assert "Message timed out" in caplog.text, caplog.text
    worker.producer = real
    gc.collect()  # the dead-address producer goes now, not with its reconnect logs at session end
    assert worker.publish(update) is True
    got = [ModelUpdate.model_validate_json(v) for _, v in read_topic(s.kafka.bootstrap_servers, s.topics.model_updates.name)]
    assert [u.version for u in got] == ["a-0123456789ab"]
    del worker, real
    gc.collect()  # its clients go before the session's broker does
