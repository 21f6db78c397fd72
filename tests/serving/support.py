"""Helpers shared by the serving tests: the bench's small SNIPS app, tiny adapters trained on it.

Adapters are trained with the trainer's own code (``train_lora``, 2-3 steps) and cached under the
model cache by the hash of everything that determines them, so a session trains each one once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from odia.bench.serve_bench import (
    app_events,
    build_router_snapshot,
    split_events,
    train_adapter,
    training_examples,
)
from odia_stream.generation.adapter_digest import adapter_sha256, version_of
from odia_stream.generation.base_model import base_model_id
from odia_stream.generation.protocol import SmallGenerator
from odia_stream.large_model import ReplaySimulatedLargeModel
from odia_stream.serving import RouterLike, RouterLoader, ServingRuntime, build_runtime
from odia_stream.serving.routers import router_loader_for
from odia_stream.settings import OdiaSettings, TrainerSettings
from odia_stream.training.lora import TrainingExample
from schemas import FCLogEvent, ModelUpdate, RouterUpdate, ServeRequest, ServeResponse, ToolSpec
from serving.consumer import ServingConsumer

__all__ = [
    "SMALL_ALWAYS",
    "RouterFixture",
    "app_events",
    "app_router",
    "collect_responses",
    "engine_settings",
    "large_routed",
    "publish_update",
    "replay_large",
    "request_of",
    "serving_context",
    "split_events",
    "steady_pool",
    "steady_stream",
    "template_router",
    "tiny_adapter",
    "training_examples",
]


@dataclass
class RouterFixture:
    """A real router snapshot built from the app's records, and the settings that locate it."""

    settings: OdiaSettings
    version: str
    events: list[FCLogEvent]
    held_out: list[FCLogEvent]
    _loader: RouterLoader | None = None

    def load(self, version: str | None = None) -> RouterLike:
        """A fresh router of the snapshot (its own error budget; the embedder is opened once)."""
        if self._loader is None:
            self._loader = router_loader_for(self.settings)
        return self._loader(version or self.version)


def app_router(snips_dir: Path, state_dir: Path, adapter_dir: Path) -> RouterFixture:
    """The real router over 1,200 records of the bench's SNIPS app (70/30 split by query group),
    its snapshot paired with the adapter in ``adapter_dir``."""
    events = app_events(snips_dir, 600)
    learn, held = split_events(events, 0.3)
    settings = OdiaSettings(state_dir=state_dir)
    version = build_router_snapshot(settings, learn, version_of(adapter_sha256(adapter_dir)))
    return RouterFixture(settings, version, events, held)


#: The app is small (1,200 records): at this router target a few of its templates have live programs.
TEMPLATE_TARGET = 0.6


def template_router(app_router: RouterFixture, *, corrupt: bool = False) -> RouterFixture:
    """The app's router rebuilt at :data:`TEMPLATE_TARGET` from the same learner state, so its
    template tier has live programs (``corrupt``: every program's first argument becomes the
    constant 12345, which no string parameter accepts). Written under its own snapshot folder."""
    from odia_stream.clustering.factory import open_embedder, open_learner_view
    from odia_stream.routing import (
        build_snapshot,
        find_snapshot,
        load_snapshot,
        snapshot_root,
        write_snapshot,
    )

    s = app_router.settings
    root = s.state_dir / "template-routers"
    # The programs' error budgets start from their own evidence: at this target it is below the
    # budget's default bar (0.8), so the bar comes down with it.
    s = s.model_copy(update={"router": s.router.model_copy(update={
        "target_precision": TEMPLATE_TARGET, "error_budget_target": TEMPLATE_TARGET - 0.1, "snapshot_dir": root,
    })})
    paired = load_snapshot(find_snapshot(snapshot_root(app_router.settings), version=app_router.version).path)
    with open_learner_view(s) as view:
        snapshot = build_snapshot(view, s, open_embedder(s), adapter_version=paired.adapter_version)
    programs = snapshot.programs
    if corrupt:
        programs = tuple(
            dataclasses.replace(p, sources=((p.sources[0][0], "const:12345"), *p.sources[1:])) for p in programs if p.sources
        )
    assert programs, "the app should have live programs at this target"
    info = write_snapshot(dataclasses.replace(snapshot, programs=programs), root)
    return RouterFixture(s, info.version, app_router.events, app_router.held_out)


#: The serving policy of tests that check the small path's mechanics, not its speed: no latency budget to
#: speak of, no hedging, no latency gate, room for every request in the small path's queue.
SMALL_ALWAYS: dict[str, object] = {
    "small_latency_budget_ms": 600_000.0, "hedge": False, "latency_gate": "cost", "small_max_queue": 1_000,
}


def engine_settings(router: RouterFixture, templates: bool = True, **serving: object) -> OdiaSettings:
    """``router``'s settings for engine tests: :data:`SMALL_ALWAYS`, no shadow checks, no warm-up
    (``serving`` overrides), the template tier on or off."""
    s = router.settings
    return s.model_copy(update={
        "serving": s.serving.model_copy(update={
            **SMALL_ALWAYS, "shadow_share": 0.0, "warmup_requests": 0, "max_new_tokens": 32, **serving,
        }),
        "templates": s.templates.model_copy(update={"enabled": templates}),
    })


def replay_large(events: list[FCLogEvent]) -> ReplaySimulatedLargeModel:
    """The replay (simulated) large model over ``events``, fast."""
    return ReplaySimulatedLargeModel(events, dataset_name="snips-app", median_ms=20, p90_ms=40, seed=1)


def tiny_adapter(
    base_dir: Path, examples: Sequence[TrainingExample], cache_dir: Path, *, steps: int, seed: int
) -> Path:
    """A LoRA adapter trained for ``steps`` steps on ``examples`` (cached by content under ``cache_dir``)."""
    trainer = TrainerSettings(max_steps=steps, batch_size=4, seed=seed, max_seq_len=384, learning_rate=2e-3)
    key = json.dumps(
        {
            "base": base_model_id(base_dir),
            "examples": [[[dict(m) for m in e.messages], e.completion] for e in examples],
            "trainer": trainer.model_dump(mode="json"),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    out = cache_dir / "serving-test-adapters" / hashlib.sha256(key.encode()).hexdigest()[:16]
    return train_adapter(base_dir, examples, trainer, out)


def publish_update(settings: OdiaSettings, update: ModelUpdate | RouterUpdate) -> None:
    p = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    p.produce(
        settings.topics.model_updates.name, key=update.generator.encode(), value=update.model_dump_json()
    )
    assert p.flush(15) == 0


def request_of(ev: FCLogEvent, tag: str, **changes: object) -> ServeRequest:
    return ServeRequest(
        request_id=f"{tag}-{uuid.uuid4().hex[:8]}", app=ev.app, query=ev.query, tools=ev.tools, **changes
    )  # type: ignore[arg-type]


@asynccontextmanager
async def serving_context(
    settings: OdiaSettings,
    generator: SmallGenerator,
    router: RouterFixture,
    *,
    large_median_ms: float = 20,
    large_p90_ms: float = 40,
    backend: str | None = None,
) -> AsyncIterator[tuple[ServingConsumer, ServingRuntime]]:
    """A serving consumer running on ``generator``, ready; ``backend`` is its engine, which sizes the
    small path (default: the settings' backend, with ``auto`` taken as transformers, the engine of
    most of these tests; ``auto`` itself would pick llama.cpp where it is installed)."""
    large = ReplaySimulatedLargeModel(
        router.events, dataset_name="snips-app", median_ms=large_median_ms, p90_ms=large_p90_ms, seed=1
    )
    engine = backend or (settings.serving.backend if settings.serving.backend != "auto" else "hf")
    runtime = build_runtime(
        settings, generator=generator, large_model=large, router_loader=lambda version: router.load(version),
        backend=engine,
    )
    consumer = ServingConsumer(settings, runtime)
    task = asyncio.create_task(consumer.run())
    deadline = time.monotonic() + 300
    while not consumer.ready.is_set():
        assert not task.done(), task.exception()
        assert time.monotonic() < deadline, "serving did not start"
        await asyncio.sleep(0.1)
    assert requests_assigned(settings, consumer.group_id), "ready before the request consumer was assigned"
    try:
        yield consumer, runtime
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 300)
        await runtime.aclose(close_generator=False)
        for version in generator.loaded_versions():
            await generator.unload_adapter(version)


def requests_assigned(settings: OdiaSettings, group_id: str) -> bool:
    """Whether a member of ``group_id`` holds partitions of the request topic (per the broker)."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    group = admin.describe_consumer_groups([group_id])[group_id].result(timeout=10)
    return any(
        tp.topic == settings.topics.requests.name
        for member in group.members
        for tp in (member.assignment.topic_partitions if member.assignment else [])
    )


def collect_responses(
    settings: OdiaSettings,
    topics: list[str],
    want: set[str],
    timeout_s: float,
    on_each: Callable[[ServeResponse], None] | None = None,
) -> list[tuple[str, ServeResponse]]:
    """Every response on ``topics`` until each id of ``want`` was seen once (then a short grace for duplicates)."""
    c = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"t-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    parts = [
        TopicPartition(t, p, 0) for t in topics for p in c.list_topics(t, timeout=10).topics[t].partitions
    ]
    c.assign(parts)
    out: list[tuple[str, ServeResponse]] = []
    deadline, grace = time.monotonic() + timeout_s, None
    try:
        while time.monotonic() < (grace or deadline):
            for m in c.consume(100, 0.2):
                if m.error() is None:
                    r = ServeResponse.model_validate_json(m.value())
                    assert m.key() == r.request_id.encode()
                    out.append((m.topic(), r))
                    if on_each:
                        on_each(r)
            if grace is None and want <= {r.request_id for _, r in out}:
                grace = time.monotonic() + 2.0
    finally:
        c.close()
    return out


#: A tool the app never offered: a request listing it has a tool set the router does not know.
UNSEEN_TOOL = ToolSpec.model_validate(
    {"name": "AddToPlaylist", "description": "AddToPlaylist", "parameters": {"type": "object", "properties": {}}}
)


def large_routed(router: RouterFixture, n: int) -> list[FCLogEvent]:
    """``n`` held-out records that the router sends large for certain: each offered one tool more
    (``UNSEEN_TOOL``), a tool set it never learned (``unknown_tools``). The two-function app is easy
    enough that the router may send every unchanged held-out record small."""
    r = router.load()
    out = [e.model_copy(update={"tools": [*e.tools, UNSEEN_TOOL]}) for e in router.held_out[:n]]
    assert len(out) == n and all(r.decide(request_of(e, "probe")).route == "large" for e in out)
    return out


def steady_pool(router: RouterFixture, *, small_every: int) -> list[FCLogEvent]:
    """Held-out records in a repeating pattern: one the router sends small, then ``small_every - 1`` large."""
    r = router.load()
    small = [e for e in router.held_out if r.decide(request_of(e, "probe")).route == "small"]
    large = large_routed(router, len(router.held_out))
    pool: list[FCLogEvent] = []
    for i in range(min(len(small), len(large) // max(1, small_every - 1))):
        pool.append(small[i])
        pool.extend(large[i * (small_every - 1) : (i + 1) * (small_every - 1)])
    return pool


async def steady_stream(
    settings: OdiaSettings,
    consumer: ServingConsumer,
    pool: Sequence[FCLogEvent],
    *,
    swap: ModelUpdate,
    interval_s: float,
    after_switch: int,
    limit: int,
    swap_after: int = 4,
) -> list[ServeRequest]:
    """Send one request every ``interval_s``; publish ``swap`` once the consumer has read the first
    ``swap_after`` requests (so some are served by the version before it, however slow the machine)
    and go on until ``after_switch`` requests were sent after serving switched to it (at most
    ``limit``)."""
    runtime = consumer.runtime
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 1})
    sent: list[ServeRequest] = []
    since_switch = 0
    while since_switch < after_switch:
        assert len(sent) < limit, f"serving did not switch to {swap.version} within {limit} requests"
        r = request_of(pool[len(sent) % len(pool)], f"s{len(sent):03d}")
        producer.produce(settings.topics.requests.name, key=r.request_id.encode(), value=r.model_dump_json())
        producer.flush(10)
        sent.append(r)
        if len(sent) == swap_after:
            deadline = time.monotonic() + 120
            while consumer.counters.consumed < swap_after:
                assert time.monotonic() < deadline, "the consumer did not read the requests before the swap"
                await asyncio.sleep(0.05)
            publish_update(settings, swap)
        if runtime.versions.current.adapter_version == swap.version:
            since_switch += 1
        await asyncio.sleep(interval_s)
    return sent
