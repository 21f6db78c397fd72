"""``odia dashboard``: read the cluster-state, response and model-update topics, serve the page.

A background thread reads every partition of the three topics with a plain consumer (manual
assignment, no group membership, no commits) and folds each record into
:class:`odia_stream.dashboard.DashboardState`; an aiohttp server in another thread serves the
static page and its JSON document (``/api/state``), which the page polls. The compacted topics
(cluster-state, model-updates) are always read from their beginning, because their meaning is
the last value per key and brokers may not have compacted them (the local one never does);
the response topic is read from its beginning only with ``from_beginning``.

The server binds ``dashboard.host`` (127.0.0.1 by default). With ``dashboard.token`` set, which
any other address requires, every request must present it: ``Authorization: Bearer <token>``,
or the cookie a browser gets by opening the page once as ``/?token=<token>`` (it is redirected
to ``/``, so the token does not stay in the address bar or the history).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from kafka_runtime.clients import KafkaTarget, as_kafka, make_consumer
from kafka_runtime.idle_pacing import IdlePacer
from odia_stream.dashboard import STATIC_FILES, DashboardState, RecordKind, read_static
from odia_stream.http_auth import bearer_token, check_exposure, token_matches
from odia_stream.settings import DashboardSettings, OdiaSettings

log = logging.getLogger(__name__)

#: The cookie that carries the dashboard token for a browser (HttpOnly, SameSite=Strict).
TOKEN_COOKIE = "odia_dashboard_token"

#: (kind, key, value) of one Kafka record.
Record = tuple[RecordKind, bytes | None, bytes | None]


@dataclass(frozen=True)
class FeedProgress:
    """How far the feed has read the backlog that existed when each partition was assigned."""

    backlog: int
    read: int
    partitions: int

    @property
    def caught_up(self) -> bool:
        """Every assigned partition was read up to its end as of its assignment."""
        return self.partitions > 0 and self.read >= self.backlog


class TopicFeed:
    """Reads topics in a background thread and hands batches of records to ``on_records``.

    Topics that do not exist yet are picked up when they appear (metadata is re-read every
    ``rescan_s``); partitions found after the first scan are read from their beginning, since
    everything in them is new.
    """

    def __init__(
        self,
        kafka: KafkaTarget,
        topics: dict[str, RecordKind],
        on_records: Callable[[Sequence[Record]], None],
        *,
        from_beginning: set[RecordKind],
        poll_s: float = 0.5,
        rescan_s: float = 5.0,
        batch_size: int = 1000,
    ) -> None:
        if not topics:
            raise ValueError("no topics to read")
        self.topics = dict(topics)
        self.on_records = on_records
        self.from_beginning = set(from_beginning)
        self.poll_s = poll_s
        self.rescan_s = rescan_s
        self.batch_size = batch_size
        self._kafka = kafka
        # The group id is required by the client; the feed never joins it (manual assignment) nor commits.
        self._group_id = f"odia-dashboard-{uuid.uuid4().hex[:12]}"
        self._config = {
            "auto.offset.reset": "latest",
            "enable.auto.offset.store": False,
            "allow.auto.create.topics": False,
            "error_cb": self._on_client_error,
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._assigned: set[tuple[str, int]] = set()
        self._targets: dict[tuple[str, int], tuple[int, int]] = {}  # (start, end) of the initial backlog
        self._positions: dict[tuple[str, int], int] = {}
        self._scanned_once = False
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def _on_client_error(self, err: KafkaError) -> None:
        self.last_error = str(err)
        log.warning("dashboard consumer: %s", err)

    def start(self) -> None:
        """Start reading in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("feed already started")
        self._thread = threading.Thread(target=self._run, name="odia-dashboard-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and close the consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        """Whether the reading thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def scanned(self) -> bool:
        """Whether topic metadata was read at least once (partitions found later start at 0)."""
        return self._scanned_once

    def progress(self) -> FeedProgress:
        """Records read of the backlog each partition had when it was assigned."""
        with self._lock:
            backlog = read = 0
            for tp, (start, end) in self._targets.items():
                backlog += end - start
                pos = self._positions.get(tp, start)
                read += max(0, min(pos, end) - start)
            return FeedProgress(backlog=backlog, read=read, partitions=len(self._assigned))

    def _run(self) -> None:
        consumer = make_consumer(self._kafka, self._group_id, self._config)
        # Paced while idle: against the local broker an unpaced consumer spins (a running demo's
        # serving slowed 5x beside an unpaced dashboard).
        pacer = IdlePacer(consumer, as_kafka(self._kafka).idle_backoff_ms, self._stop)
        next_scan = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_scan:
                    try:
                        self._rescan(consumer)
                    except KafkaException as exc:  # broker unreachable for now: try again later
                        self.last_error = f"metadata: {exc}"
                        log.warning("dashboard: cannot read topic metadata: %s", exc)
                    next_scan = time.monotonic() + self.rescan_s
                if not self._assigned:
                    self._stop.wait(self.poll_s)
                    continue
                batch: list[Record] = []
                for msg in pacer.consume(self.batch_size, self.poll_s):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            self.last_error = str(err)
                            log.warning("dashboard: %s", err)
                        continue
                    topic, partition = msg.topic(), msg.partition()
                    batch.append((self.topics[topic], msg.key(), msg.value()))
                    with self._lock:
                        self._positions[(topic, partition)] = msg.offset() + 1
                if batch:
                    self.on_records(batch)
        except Exception:
            log.exception("dashboard feed stopped")
            raise
        finally:
            consumer.close()

    def _rescan(self, consumer: Consumer) -> None:
        metadata = consumer.list_topics(timeout=10)
        first = not self._scanned_once
        new: list[TopicPartition] = []
        for topic, kind in self.topics.items():
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            for partition in sorted(meta.partitions):
                if (topic, partition) in self._assigned:
                    continue
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
                if kind in self.from_beginning or not first:
                    new.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
                    target = (low, high)
                else:
                    new.append(TopicPartition(topic, partition, OFFSET_END))
                    target = (high, high)
                with self._lock:
                    self._targets[(topic, partition)] = target
        self._scanned_once = True
        if new:
            consumer.incremental_assign(new)
            self._assigned.update((tp.topic, tp.partition) for tp in new)
            log.info("dashboard: reading %d new partitions", len(new))


class DashboardServer:
    """The feed plus the web server, both in background threads (``start``/``stop``), or in the
    foreground until SIGINT/SIGTERM (``serve_forever``)."""

    def __init__(
        self,
        settings: OdiaSettings,
        *,
        host: str | None = None,
        port: int | None = None,
        from_beginning: bool = False,
        rescan_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.dashboard: DashboardSettings = settings.dashboard
        self.host = host if host is not None else self.dashboard.host
        self.port = port if port is not None else self.dashboard.port
        self.state = DashboardState(self.dashboard)
        self._lock = threading.Lock()
        self._cached: tuple[int, bytes] | None = None
        t = settings.topics
        topics: dict[str, RecordKind] = {
            t.cluster_state.name: "cluster_state",
            t.model_updates.name: "model_update",
            t.responses.name: "response",
        }
        starts: set[RecordKind] = {"cluster_state", "model_update"}
        if from_beginning:
            starts.add("response")
        self.feed = TopicFeed(
            settings.kafka, topics, self.apply, from_beginning=starts, rescan_s=rescan_s
        )
        self._static = {name: read_static(name) for name in STATIC_FILES}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._bound: tuple[str, int] | None = None
        self._stopped = False

    # -- state -------------------------------------------------------------------------------------
    def apply(self, records: Sequence[Record]) -> None:
        """Fold a batch of records into the state (called by the feed thread)."""
        with self._lock:
            for kind, key, value in records:
                self.state.apply(kind, key, value)

    def state_json(self) -> bytes:
        """The page's JSON document, rebuilt only when a record arrived since the last call."""
        with self._lock:
            if self._cached is None or self._cached[0] != self.state.revision:
                self._cached = (self.state.revision, self.state.view().model_dump_json().encode())
            return self._cached[1]

    # -- http --------------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        async def index(_: web.Request) -> web.Response:
            return web.Response(body=self._static["index.html"], content_type="text/html", charset="utf-8")

        async def static(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if name not in self._static:
                raise web.HTTPNotFound(text=f"no static file {name!r}")
            content_type, _, charset = STATIC_FILES[name].partition("; charset=")
            return web.Response(body=self._static[name], content_type=content_type, charset=charset or None)

        async def api_state(_: web.Request) -> web.Response:
            body = await asyncio.get_running_loop().run_in_executor(None, self.state_json)
            return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-store"})

        async def healthz(_: web.Request) -> web.Response:
            p = self.feed.progress()
            return web.json_response(
                {"ok": self.feed.alive, "scanned": self.feed.scanned, "partitions": p.partitions, "backlog": p.backlog, "read": p.read,
                 "caught_up": p.caught_up, "consumer_error": self.feed.last_error}
            )

        token = self.dashboard.token

        @web.middleware
        async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
            if token is None:
                return await handler(request)
            if token_matches(bearer_token(request.headers.get("Authorization")), token) or token_matches(
                request.cookies.get(TOKEN_COOKIE), token
            ):
                return await handler(request)
            if request.path == "/" and token_matches(request.query.get("token"), token):
                found = web.HTTPFound("/")
                found.set_cookie(TOKEN_COOKIE, token.get_secret_value(), httponly=True, samesite="Strict")
                return found
            return web.json_response({"error": "a bearer token is required"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})

        app = web.Application(middlewares=[require_token])
        app.router.add_get("/", index)
        app.router.add_get("/static/{name}", static)
        app.router.add_get("/api/state", api_state)
        app.router.add_get("/healthz", healthz)
        return app

    def _run_http(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        runner = web.AppRunner(self._app(), access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port)
            loop.run_until_complete(site.start())
            host, port = runner.addresses[0][:2]
            self._bound = (str(host), int(port))
        except OSError as exc:  # port taken, unknown host: reported by start()
            self._start_error = exc
        finally:
            self._ready.set()
        try:
            if self._bound is not None:
                loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    @property
    def url(self) -> str:
        """``http://host:port/`` of the running server (the bound port when 0 was asked for)."""
        if self._bound is None:
            raise RuntimeError("server not started")
        host, port = self._bound
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self, timeout_s: float = 15.0) -> str:
        """Start the feed and the web server; returns the page's URL.

        Raises ``OSError`` when the address cannot be bound, ``ValueError`` when it is not a loopback
        address and no token is set.
        """
        check_exposure(self.host, self.dashboard.token, "the dashboard", "ODIA_DASHBOARD__TOKEN")
        self._http_thread = threading.Thread(target=self._run_http, name="odia-dashboard-http", daemon=True)
        self._http_thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"dashboard server did not start within {timeout_s:.0f}s")
        if self._start_error is not None:
            raise OSError(f"cannot serve the dashboard on {self.host}:{self.port}: {self._start_error}") from self._start_error
        if self._bound is None:
            raise RuntimeError("dashboard server thread failed to start; see the log")
        self.feed.start()
        return self.url

    def stop(self) -> None:
        """Stop the web server and the feed (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._bound is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._http_thread is not None:
            self._http_thread.join(10)
        self.feed.stop()

    def serve_forever(self, on_started: Callable[[str], None] | None = None) -> None:
        """Run until SIGINT or SIGTERM (main thread only)."""
        done = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            url = self.start()
            if on_started is not None:
                on_started(url)
            while not done.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextmanager
def running_dashboard(settings: OdiaSettings, **kwargs: object) -> Iterator[DashboardServer]:
    """A started :class:`DashboardServer`, stopped on exit."""
    server = DashboardServer(settings, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
