"""The training set: records of simple clusters that call the cluster's dominant function.

From a learner's state (the live learner or a read-only snapshot):

1. every simple cluster (of one app, or all) contributes its kept examples that call its
   dominant function; examples of other functions are dropped, and so are calls that do not
   fit their offered tools (an undeclared argument, a wrong type: the large model's mistakes);
2. within a query group (one normalised query; near-duplicate groups were already merged into
   their target), identical inputs keep one record (most complete arguments, then most recent)
   and a group keeps at most ``max_per_query`` records, ranked the same way;
3. per function, query groups are split train/eval by a seeded hash of the group key, so a
   query (and its near-duplicates) never lands on both sides, and a group keeps its side as
   the store grows (:func:`held_out_groups`);
4. per function, train is balanced: frequent functions are downsampled to ``max_per_function``
   taking one record per query before a second one of any query, rare ones are kept and
   repeated up to ``min_per_function``; eval is capped at ``max_eval_per_function``.

Everything is ordered by keys and seeded hashes, so the same store snapshot and seed give the
same set, byte for byte (see :attr:`TrainingSet.fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError
from tqdm import tqdm

from odia_stream.clustering.records import Cluster, QueryGroup, StoredExample
from odia_stream.evaluation.call_validation import validate_call
from odia_stream.keys import cluster_key, group_key
from odia_stream.labels import NO_CALL
from odia_stream.normalize import normalize_query
from odia_stream.settings import TrainingDataSettings
from schemas import ChatMessage, FunctionCall, ToolSpec


class TrainingDataError(ValueError):
    """The learner state cannot be turned into a training set (missing or corrupt records)."""


class ExampleStore(Protocol):
    """The part of ``LearnerStateDB`` the builder reads."""

    def examples_of(self, group_ids: Sequence[int]) -> list[StoredExample]: ...

    def tools_json(self, tools_key: str) -> str | None: ...


class LearnerState(Protocol):
    """What the builder reads from a learner (``OnlineClusterLearner`` or ``LearnerView``)."""

    clusters: dict[int, Cluster]
    groups: dict[int, QueryGroup]
    store_version: int

    @property
    def db(self) -> ExampleStore: ...


class TrainingRecord(BaseModel):
    """One training (or eval) example: what the large model was asked and what it called."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    #: Query group key (``g<hex>`` of the group after near-duplicate aliasing): the split unit.
    group: str
    #: Cluster key (``c<hex>``) the record was drawn from.
    cluster: str
    function: str
    timestamp: datetime
    #: Arguments with a non-empty value.
    completeness: int
    query: str
    history: list[ChatMessage]
    tools: list[ToolSpec]
    call: FunctionCall


class TrainingSetStats(BaseModel):
    """Counts of what the builder saw, dropped and kept."""

    model_config = ConfigDict(frozen=True)

    simple_clusters: int
    query_groups: int
    examples_read: int
    #: Examples of a simple cluster that call another function than its dominant one.
    other_function_dropped: int
    #: Calls that do not fit their offered tools (undeclared argument, wrong type or enum).
    invalid_call_dropped: int
    #: Records whose input (query, history, tools) another kept record of the group already has.
    duplicate_input_dropped: int
    #: Records beyond ``max_per_query`` in their group.
    per_query_cap_dropped: int
    #: Per function: usable records before balancing (after the drops above).
    available: dict[str, int]
    #: Per function: train rows after balancing (repeats included) and distinct train records.
    train: dict[str, int]
    train_distinct: dict[str, int]
    #: Per function: eval records (after the cap), and functions with no eval record.
    eval: dict[str, int]
    no_eval: list[str]


class TrainingSet(BaseModel):
    """Train and eval records with their provenance; ``fingerprint`` is a SHA-256 of the content."""

    model_config = ConfigDict(frozen=True)

    app: str | None
    seed: int
    store_version: int
    options: TrainingDataSettings
    train: list[TrainingRecord]
    eval: list[TrainingRecord]
    stats: TrainingSetStats
    fingerprint: str


def _rank(seed: int, *parts: object) -> str:
    """A seeded, order-independent sort key."""
    return hashlib.sha256("\x1f".join([str(seed), *map(str, parts)]).encode("utf-8")).hexdigest()


def _best_first(records: Sequence[TrainingRecord]) -> list[TrainingRecord]:
    """Most complete arguments first, then most recent, then event id."""
    return sorted(records, key=lambda r: (-r.completeness, -r.timestamp.timestamp(), r.event_id))


def _input_key(record: TrainingRecord) -> str:
    history = json.dumps(
        [m.model_dump(mode="json", exclude_none=True) for m in record.history], sort_keys=True
    )
    tools = json.dumps([t.model_dump(mode="json") for t in record.tools], sort_keys=True)
    return hashlib.sha256(
        "\x1f".join((normalize_query(record.query), history, tools)).encode("utf-8")
    ).hexdigest()


def _round_robin(groups: Sequence[list[TrainingRecord]], limit: int) -> list[TrainingRecord]:
    """Up to ``limit`` records: each group's best, then each group's second best, and so on."""
    out: list[TrainingRecord] = []
    depth = 0
    while len(out) < limit:
        took = False
        for records in groups:
            if depth < len(records):
                out.append(records[depth])
                took = True
                if len(out) == limit:
                    break
        if not took:
            break
        depth += 1
    return out


class _Decoder:
    """Turns stored examples back into records (offered tools cached by key)."""

    def __init__(self, db: ExampleStore) -> None:
        self.db = db
        self._tools: dict[str, list[ToolSpec]] = {}

    def tools(self, key: str) -> list[ToolSpec]:
        if key not in self._tools:
            text = self.db.tools_json(key)
            if text is None:
                raise TrainingDataError(f"offered tools {key!r} are missing from the learner state")
            try:
                self._tools[key] = [ToolSpec.model_validate(t) for t in json.loads(text)]
            except (ValueError, ValidationError) as exc:
                raise TrainingDataError(f"offered tools {key!r} cannot be decoded: {exc}") from exc
        return self._tools[key]

    def record(self, ex: StoredExample, group: str, cluster: str) -> TrainingRecord:
        try:
            call = FunctionCall.model_validate_json(ex.call_json)
            history = [ChatMessage.model_validate(m) for m in json.loads(ex.history_json)]
        except (ValueError, ValidationError) as exc:
            raise TrainingDataError(f"example {ex.event_id!r} cannot be decoded: {exc}") from exc
        return TrainingRecord(
            event_id=ex.event_id,
            group=group,
            cluster=cluster,
            function=ex.function,
            timestamp=ex.timestamp,
            completeness=ex.completeness,
            query=ex.query,
            history=history,
            tools=self.tools(ex.tools_key),
            call=call,
        )


def fingerprint(train: Sequence[TrainingRecord], eval_: Sequence[TrainingRecord]) -> str:
    """SHA-256 of the records' canonical JSON, train then eval (order matters)."""
    h = hashlib.sha256()
    for side, records in (("train", train), ("eval", eval_)):
        h.update(side.encode())
        for r in records:
            h.update(
                json.dumps(r.model_dump(mode="json"), sort_keys=True, ensure_ascii=False).encode("utf-8")
            )
            h.update(b"\n")
    return h.hexdigest()


def held_out_groups(keys: Sequence[str], eval_share: float, seed: int) -> set[str]:
    """Which of one function's query groups are held out for evaluation.

    A group is held out when its seeded hash, read as a fraction of 1, is below ``eval_share``:
    a group keeps its side however many groups come later, so records an adapter trained on
    never turn up in a later eval set. A function with two groups or more and none held out
    lends its lowest-hash group; at least one group always stays in train.
    """
    ordered = sorted(set(keys), key=lambda k: (_rank(seed, "split", k), k))
    held = [k for k in ordered if int(_rank(seed, "split", k)[:16], 16) / 2**64 < eval_share]
    if not held and eval_share > 0 and len(ordered) >= 2:
        held = ordered[:1]
    if len(held) == len(ordered):
        held = held[:-1]
    return set(held)


def build_training_set(
    learner: LearnerState,
    app: str | None,
    options: TrainingDataSettings,
    seed: int | None = None,
    *,
    progress: bool = False,
) -> TrainingSet:
    """The balanced, group-split training set of ``app``'s simple clusters (all apps when ``None``).

    ``seed`` defaults to ``options.seed``. Raises ``ValueError`` for contradictory options and
    :class:`TrainingDataError` when stored records cannot be decoded.
    """
    seed = options.seed if seed is None else seed
    if options.min_per_function > options.max_per_function:
        raise ValueError(
            f"min_per_function ({options.min_per_function}) exceeds "
            f"max_per_function ({options.max_per_function})"
        )
    decoder = _Decoder(learner.db)
    clusters = sorted(
        (
            c
            for c in learner.clusters.values()
            if c.label == "simple"
            and c.dominant_function not in (None, NO_CALL)
            and (app is None or c.app == app)
        ),
        key=lambda c: c.cluster_id,
    )
    counters: Counter[str] = Counter()
    by_function: dict[str, dict[str, list[TrainingRecord]]] = defaultdict(dict)
    for cluster in tqdm(clusters, desc="training set", unit="cluster", disable=not progress):
        function = cluster.dominant_function
        assert function is not None
        canonical: list[int] = []
        for gid in cluster.group_ids:
            group = learner.groups.get(gid)
            target = group.alias_of if group is not None and group.alias_of is not None else gid
            if target not in canonical:
                canonical.append(target)
        examples = learner.db.examples_of(canonical)
        counters["examples_read"] += len(examples)
        per_group: dict[int, list[TrainingRecord]] = defaultdict(list)
        for ex in sorted(examples, key=lambda e: (e.group_id, e.event_id)):
            if ex.function != function:
                counters["other_function_dropped"] += 1
                continue
            record = decoder.record(ex, group_key(ex.group_id), cluster_key(cluster.cluster_id))
            if not validate_call(record.call, record.tools, check_required=False).ok:
                counters["invalid_call_dropped"] += 1
                continue
            per_group[ex.group_id].append(record)
        for gid, records in per_group.items():
            kept: dict[str, TrainingRecord] = {}
            for r in _best_first(records):
                kept.setdefault(_input_key(r), r)
            counters["duplicate_input_dropped"] += len(records) - len(kept)
            best = _best_first(list(kept.values()))
            counters["per_query_cap_dropped"] += max(0, len(best) - options.max_per_query)
            by_function[function][group_key(gid)] = best[: options.max_per_query]

    train: list[TrainingRecord] = []
    eval_: list[TrainingRecord] = []
    available: dict[str, int] = {}
    train_rows: dict[str, int] = {}
    train_distinct: dict[str, int] = {}
    eval_rows: dict[str, int] = {}
    for function in sorted(by_function):
        groups = by_function[function]
        available[function] = sum(len(v) for v in groups.values())
        held_keys = held_out_groups(list(groups), options.eval_share, seed)
        ordered = sorted(groups, key=lambda k: (_rank(seed, "split", k), k))
        train_groups = [groups[k] for k in ordered if k not in held_keys]
        eval_groups = [groups[k] for k in ordered if k in held_keys]
        picked = _round_robin(train_groups, options.max_per_function)
        train_distinct[function] = len(picked)
        rows = list(picked)
        while picked and len(rows) < options.min_per_function:
            rows.append(picked[(len(rows) - len(picked)) % len(picked)])
        train_rows[function] = len(rows)
        train.extend(rows)
        held = _round_robin(eval_groups, options.max_eval_per_function)
        eval_rows[function] = len(held)
        eval_.extend(held)

    # A seeded shuffle: functions and queries interleave in training batches.
    occurrence: Counter[str] = Counter()
    keyed_train = []
    for r in train:
        occurrence[r.event_id] += 1
        keyed_train.append((_rank(seed, "order", r.event_id, occurrence[r.event_id]), r.event_id, r))
    train = [r for *_, r in sorted(keyed_train, key=lambda t: (t[0], t[1]))]
    eval_ = sorted(eval_, key=lambda r: (_rank(seed, "order", r.event_id), r.event_id))
    stats = TrainingSetStats(
        simple_clusters=len(clusters),
        query_groups=sum(len(g) for g in by_function.values()),
        examples_read=counters["examples_read"],
        other_function_dropped=counters["other_function_dropped"],
        invalid_call_dropped=counters["invalid_call_dropped"],
        duplicate_input_dropped=counters["duplicate_input_dropped"],
        per_query_cap_dropped=counters["per_query_cap_dropped"],
        available=available,
        train=train_rows,
        train_distinct=train_distinct,
        eval=eval_rows,
        no_eval=[f for f, n in eval_rows.items() if n == 0],
    )
    return TrainingSet(
        app=app,
        seed=seed,
        store_version=learner.store_version,
        options=options,
        train=train,
        eval=eval_,
        stats=stats,
        fingerprint=fingerprint(train, eval_),
    )
