"""Shared fixtures: a real local Kafka-protocol broker, isolated settings, dataset paths."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Consumer, TopicPartition

from kafka_runtime.local_broker import LocalBroker, free_port
from odia_stream.datasets import load_dataset
from odia_stream.settings import OdiaSettings, TopicSettings
from schemas import FCLogEvent
from tests.learner_support import LearnerOutput, learn_in_batches

if TYPE_CHECKING:
    from odia_stream.adapters.registry import AdapterEntry
    from odia_stream.generation.hf_generator import HFGenerator
    from tests.serving.support import RouterFixture

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("ODIA_DATASETS_DIR", REPO_ROOT.parent / "shared" / "datasets"))
#: Converted models are cached here across test runs (and shared with `make demo`).
MODEL_CACHE = Path(os.environ.get("ODIA_TEST_CACHE", REPO_ROOT / ".odia" / "cache"))


#: Tests that use one of these fixtures need the real broker or the real small model serving with
#: adapters: they are marked ``slow`` and left out of ``make test-fast``. So are the tests in these
#: folders; other slow tests (LoRA training, whole-dataset runs, benchmarks) carry the mark themselves.
SLOW_FIXTURES = frozenset({"local_broker", "_hf_session"})
SLOW_FOLDERS = ("serving", "vllm")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that need the broker, a trained adapter or vLLM as ``slow``."""
    for item in items:
        folder = item.path.relative_to(REPO_ROOT / "tests").parts[0]
        if folder in SLOW_FOLDERS or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """``../shared/datasets`` (read by path, never copied)."""
    if not DATASETS.is_dir():
        pytest.fail(f"datasets not found at {DATASETS}; set ODIA_DATASETS_DIR")
    return DATASETS


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Where converted packaged models are cached."""
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    return MODEL_CACHE


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A real noida-db Kafka broker on a free loopback port for the whole test session."""
    broker = LocalBroker(tmp_path_factory.mktemp("broker"), port=free_port())
    broker.up()
    try:
        yield broker
    finally:
        # Clients still waiting in reference cycles (a consumer's callbacks are bound methods of
        # their owner) would log connection errors once the broker is gone: collect them first.
        gc.collect()
        broker.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker: LocalBroker) -> str:
    """Bootstrap address of the session's real broker."""
    return local_broker.address


@pytest.fixture()
def settings(tmp_path: Path, kafka_bootstrap: str) -> OdiaSettings:
    """Settings for one test: its own state dir and topic names, the session broker, the shared model cache."""
    s = OdiaSettings(
        state_dir=tmp_path / "state", model_cache_dir=MODEL_CACHE, app_id=f"odia-test-{uuid.uuid4().hex[:8]}"
    )
    return s.model_copy(
        update={
            "kafka": s.kafka.model_copy(update={"bootstrap_servers": kafka_bootstrap}),
            "topics": TopicSettings().with_suffix(uuid.uuid4().hex[:8]),
        }
    )


@pytest.fixture(scope="session")
def make_settings(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str):
    """``make_settings(**clustering)``: fresh settings (own state dir, app id and topics) on the session broker."""

    def _make(**clustering: object) -> OdiaSettings:
        tag = uuid.uuid4().hex[:8]
        s = OdiaSettings(
            state_dir=tmp_path_factory.mktemp(f"state-{tag}"), model_cache_dir=MODEL_CACHE, app_id=f"odia-test-{tag}"
        )
        return s.model_copy(
            update={
                "kafka": s.kafka.model_copy(update={"bootstrap_servers": kafka_bootstrap}),
                "topics": TopicSettings().with_suffix(tag),
                "clustering": s.clustering.model_copy(update=clustering),
            }
        )

    return _make


@pytest.fixture(scope="session")
def snips_by_function(datasets_dir: Path) -> Mapping[str, Sequence[FCLogEvent]]:
    """Every SNIPS event, grouped by the function it calls (``-``: no call), in dataset order (read-only)."""
    by_fn: dict[str, list[FCLogEvent]] = {}
    for ev in load_dataset(datasets_dir / "snips"):
        by_fn.setdefault(ev.call.name if ev.call else "-", []).append(ev)
    return by_fn


@pytest.fixture(scope="session")
def snips_events(snips_by_function: Mapping[str, Sequence[FCLogEvent]]) -> list[FCLogEvent]:
    """1,400 SNIPS events, 200 per intent, in a seeded shuffled order."""
    rng = random.Random(7)
    picked = [e for evs in snips_by_function.values() for e in rng.sample(evs, min(200, len(evs)))]
    rng.shuffle(picked)
    return picked


@pytest.fixture(scope="session")
def hammerbench_events(datasets_dir: Path) -> list[FCLogEvent]:
    """HammerBench zh multi-turn events (every turn of the mQsA/sQmA/mQmA files)."""
    hb = datasets_dir / "hammerbench" / "zh"
    events: list[FCLogEvent] = []
    for name in ("HammerBench_mQsA.json", "HammerBench_sQmA.json", "HammerBench_mQmA.json"):
        events.extend(load_dataset(hb / name))
    return events


@pytest.fixture(scope="session")
def snips_learner_output(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, snips_events: list[FCLogEvent]
) -> LearnerOutput:
    """A real learner's output for the first 600 of ``snips_events`` in batches of 150 (read-only)."""
    return learn_in_batches(tmp_path_factory.mktemp("snips-learner"), model_cache, snips_events[:600])


def _read_topic(bootstrap: str, topic: str, timeout_s: float = 20.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) of ``topic`` from the beginning up to its current end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        todo = {p for p, end in ends.items() if end > 0}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out = []
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append((msg.key(), msg.value()))
            if msg.offset() >= ends[msg.partition()] - 1:
                todo.discard(msg.partition())
        assert not todo, f"could not read {topic} to its end"
        return out
    finally:
        c.close()


@pytest.fixture(scope="session")
def read_topic() -> Callable[..., list[tuple[bytes | None, bytes | None]]]:
    """``read_topic(bootstrap, topic)``: every (key, value) from the beginning to the current end."""
    return _read_topic


# The real small model, two tiny real adapters and the real router of a small SNIPS app: shared by
# the serving-engine tests (tests/odia_stream/serving) and the serving-consumer tests (tests/serving),
# built once per session.


@pytest.fixture(scope="session")
def base_model_dir(model_cache: Path) -> Path:
    """The converted SmolLM2-135M-Instruct folder."""
    from odia_stream.generation.base_model import PACKAGED_SMOLLM2, resolve_base_model

    return resolve_base_model(PACKAGED_SMOLLM2, model_cache)


@pytest.fixture(scope="session")
def serving_app(datasets_dir: Path) -> tuple[list[FCLogEvent], list[FCLogEvent]]:
    """``(learn, held_out)`` records of the bench's small SNIPS app (two functions), split by query group."""
    from tests.serving.support import app_events, split_events

    return split_events(app_events(datasets_dir / "snips", 80), 0.3)


@pytest.fixture(scope="session")
def adapter_dirs(
    base_model_dir: Path, model_cache: Path, serving_app: tuple[list[FCLogEvent], list[FCLogEvent]]
) -> tuple[Path, Path]:
    """Two different real adapters: 3 and 1 LoRA steps on the app's records (trained once, cached)."""
    from odia_stream.settings import PromptSettings
    from tests.serving.support import tiny_adapter, training_examples

    examples = training_examples(serving_app[0][:12], PromptSettings())
    return (
        tiny_adapter(base_model_dir, examples, model_cache, steps=3, seed=1),
        tiny_adapter(base_model_dir, examples[:4], model_cache, steps=1, seed=2),
    )


@pytest.fixture()
def adapters(
    tmp_path: Path, base_model_dir: Path, adapter_dirs: tuple[Path, Path]
) -> tuple[AdapterEntry, AdapterEntry]:
    """The two adapters registered in a fresh registry (content versions)."""
    from odia_stream.adapters.registry import AdapterRegistry
    from odia_stream.generation.base_model import base_model_id

    registry = AdapterRegistry(tmp_path / "registry")
    return tuple(registry.register(d, base_model=base_model_id(base_model_dir)) for d in adapter_dirs)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def _hf_session(base_model_dir: Path) -> Iterator[HFGenerator]:
    from odia_stream.generation.hf_generator import HFGenerator

    gen = HFGenerator(base_model_dir, max_new_tokens=32, max_batch_size=8)
    yield gen
    asyncio.run(gen.aclose())


@pytest.fixture()
def hf_generator(_hf_session: HFGenerator) -> Iterator[HFGenerator]:
    """The session's transformers backend, with every adapter a test loaded unloaded afterwards."""
    yield _hf_session
    for version in _hf_session.loaded_versions():
        asyncio.run(_hf_session.unload_adapter(version))


@pytest.fixture(scope="session")
def app_router(
    datasets_dir: Path, tmp_path_factory: pytest.TempPathFactory, adapter_dirs: tuple[Path, Path]
) -> RouterFixture:
    """The real router over 1,200 records of the app (learner + snapshot paired with the first adapter)."""
    from tests.serving.support import app_router as app_router_of

    return app_router_of(datasets_dir / "snips", tmp_path_factory.mktemp("router-state"), adapter_dirs[0])
