"""A *simulated* large model: answers with the call recorded in a dataset, after a drawn latency.

For benchmarks and the demo, where no real large model is reachable. Its name, its docs and
every answer it gives say that it is simulated (``LargeModelAnswer.simulated`` is true and the
model name reads ``replay-simulated(<dataset>)``).

A request is matched to a record by (app, normalised query, history, offered tool names); when
no record matches exactly, by (app, normalised query) among records whose call names an offered
tool. Several records under one key answer with their most frequent call (ties: the earliest
record). Latencies follow a lognormal fitted to a median and a P90 (default 1600 ms / 2500 ms,
the paper's large model) and are drawn from ``(seed, request_id)``, so a run is reproducible.

>>> from schemas import FCLogEvent, ServeRequest
>>> ev = FCLogEvent(event_id="e1", query="Play jazz", tools=[{"name": "play"}], call={"name": "play"})
>>> model = ReplaySimulatedLargeModel([ev], dataset_name="doc", sleep=False)
>>> import asyncio
>>> request = ServeRequest(request_id="r1", query="play jazz!", tools=[{"name": "play"}])
>>> answer = asyncio.run(model.call(request))
>>> answer.call.name, answer.simulated, answer.model
('play', True, 'replay-simulated(doc)')
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from odia_stream.datasets import load_dataset
from odia_stream.large_model.protocol import LargeModelAnswer
from odia_stream.normalize import normalize_query
from schemas import ChatMessage, FCLogEvent, FunctionCall, ServeRequest, ToolSpec

__all__ = ["Z_90", "ReplaySimulatedLargeModel", "history_signature", "lognormal_params"]

#: Standard normal quantile at 0.9.
Z_90 = 1.2815515655446004


def lognormal_params(median_ms: float, p90_ms: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the lognormal whose median and 90th percentile are the given ones."""
    if median_ms <= 0 or p90_ms <= median_ms:
        raise ValueError(f"need 0 < median < p90, got median={median_ms}, p90={p90_ms}")
    return math.log(median_ms), math.log(p90_ms / median_ms) / Z_90


def history_signature(history: Sequence[ChatMessage]) -> str:
    """A stable hash of a history: roles, normalised texts, calls with their arguments."""
    parts = [
        [
            m.role,
            normalize_query(m.content) if m.content else "",
            [[tc.function.name, tc.function.arguments] for tc in m.tool_calls or ()],
        ]
        for m in history
    ]
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


def _tool_names(tools: Sequence[ToolSpec]) -> frozenset[str]:
    return frozenset(t.name for t in tools)


def _call_key(call: FunctionCall | None) -> str:
    return "" if call is None else json.dumps([call.name, call.arguments], ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class _Record:
    event_id: str
    call: FunctionCall | None


_ExactKey = tuple[str, str, str, frozenset[str]]
_QueryKey = tuple[str, str]


class ReplaySimulatedLargeModel:
    """A simulated large model replaying a dataset's recorded calls (see the module docs).

    ``sleep=False`` answers at once and only reports the drawn latency, for tests and
    benchmarks that account latency arithmetically.
    """

    def __init__(
        self,
        events: Iterable[FCLogEvent],
        *,
        dataset_name: str,
        median_ms: float = 1600.0,
        p90_ms: float = 2500.0,
        seed: int = 0,
        sleep: bool = True,
    ) -> None:
        self._mu, self._sigma = lognormal_params(median_ms, p90_ms)
        self._seed = seed
        self._sleep = sleep
        self._name = f"replay-simulated({dataset_name})"
        self._exact: dict[_ExactKey, list[_Record]] = {}
        self._by_query: dict[_QueryKey, list[_Record]] = {}
        count = 0
        for ev in events:
            record = _Record(ev.event_id, ev.call)
            query = normalize_query(ev.query)
            exact = (ev.app, query, history_signature(ev.history), _tool_names(ev.tools))
            self._exact.setdefault(exact, []).append(record)
            self._by_query.setdefault((ev.app, query), []).append(record)
            count += 1
        if count == 0:
            raise ValueError(f"{self._name}: no recorded events to replay")
        self.records = count

    @classmethod
    def from_dataset(
        cls, path: Path, *, lang: str | None = None, limit: int | None = None, **kwargs: object
    ) -> ReplaySimulatedLargeModel:
        """Replay the dataset at ``path`` (any layout :func:`~odia_stream.datasets.load_dataset` reads)."""
        path = Path(path)
        name = path.name if path.name not in ("zh", "en") else f"{path.parent.name}/{path.name}"
        events = load_dataset(path, lang=lang, limit=limit)
        return cls(events, dataset_name=name, **kwargs)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        """``replay-simulated(<dataset>)``."""
        return self._name

    def latency_ms(self, request_id: str) -> float:
        """The simulated latency of ``request_id`` (a pure function of the seed and the id)."""
        rng = random.Random(f"{self._seed}\x1f{request_id}")
        return rng.lognormvariate(self._mu, self._sigma)

    def lookup(self, request: ServeRequest) -> tuple[FunctionCall | None, str]:
        """The recorded call for ``request`` and a reason saying how it was found (or not)."""
        query = normalize_query(request.query)
        offered = _tool_names(request.tools)
        exact = self._exact.get((request.app, query, history_signature(request.history), offered))
        if exact:
            record = self._majority(exact)
            return record.call, f"simulated: replayed the recorded answer of {record.event_id}"
        candidates = self._by_query.get((request.app, query))
        if not candidates:
            return None, f"simulated: no recorded record for app={request.app!r}, query={request.query!r}"
        usable = [r for r in candidates if r.call is None or not offered or r.call.name in offered]
        if not usable:
            names = sorted({r.call.name for r in candidates if r.call is not None})
            return (
                None,
                f"simulated: the recorded calls for this query ({', '.join(names)}) name no offered tool",
            )
        record = self._majority(usable)
        return record.call, f"simulated: matched on (app, query) only; recorded answer of {record.event_id}"

    @staticmethod
    def _majority(records: list[_Record]) -> _Record:
        counts = Counter(_call_key(r.call) for r in records)
        best = max(counts.values())
        return next(r for r in records if counts[_call_key(r.call)] == best)

    async def call(self, request: ServeRequest) -> LargeModelAnswer:
        """The recorded call (or none, with the reason) after the drawn latency."""
        call, reason = self.lookup(request)
        latency = self.latency_ms(request.request_id)
        if self._sleep:
            await asyncio.sleep(latency / 1000.0)
        return LargeModelAnswer(
            call=call, model=self._name, latency_ms=latency, simulated=True, reason=reason
        )

    async def aclose(self) -> None:
        """Nothing to release."""
