"""The router: decide, in milliseconds, whether the small model may answer a request.

Per request: safety pre-checks (tools, app, tool set); a query the learner knows, answered
consistently with one function, goes to it without embedding (the query match); otherwise the
query is templated with the snapshot's entity dictionaries and embedded once; stage 1, the
nearest cluster of the request's scope (close enough and simple: the small model; close enough
and complex: the large one), then the query's NER template; stage 2, the classifier on the
embedding and context features; finally the safety rules on the predicted function and the
cluster's (or known query's) error budget. A request routed small may
then be answered by the template tier (:meth:`Router.template_answer`,
:mod:`~odia_stream.routing.template_tier`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from odia_stream.context import ScopeMode
from odia_stream.embedding import Embedder
from odia_stream.keys import TemplatedQuery, TemplateKey, budget_key, scope_of
from odia_stream.normalize import normalize_query
from odia_stream.routing.builder import budget_of, snapshot_root
from odia_stream.routing.classifier import COMPLEX
from odia_stream.routing.decision import Decision, Reason, Stage
from odia_stream.routing.error_budget import ErrorBudget
from odia_stream.routing.features import context_features
from odia_stream.routing.lookup import ClusterLookup, IndexClusterLookup, MatrixClusterLookup, fill_index
from odia_stream.routing.safety import SafetyRules
from odia_stream.routing.snapshot import (
    QueryEntry,
    RouterSnapshot,
    TemplateEntry,
    find_snapshot,
    load_snapshot,
)
from odia_stream.routing.template_tier import TemplateAnswer, TemplateTier
from odia_stream.settings import OdiaSettings, RouterSettings
from odia_stream.store import EmbedderMismatchError, EmbedderSpec, open_cluster_index
from odia_stream.store.factory import server_options
from odia_stream.templates import EntityDictionary, QueryTemplater
from schemas import ServeRequest

#: A request's scope, template and the text that is embedded (its normalised NER template).
PreparedQuery = TemplatedQuery


@dataclass(frozen=True, slots=True)
class _Candidate:
    function: str
    score: float
    stage: Stage
    reason: Reason
    key: str | None


class Router:
    """Routes requests with one snapshot. ``decide`` only reads; the error budget, the one thing
    that changes (``record_agreement``), is guarded by a lock."""

    def __init__(
        self,
        snapshot: RouterSnapshot,
        embedder: Embedder,
        settings: RouterSettings,
        *,
        lookup: ClusterLookup | None = None,
    ) -> None:
        if embedder.model_id != snapshot.embedder_id or embedder.dim != snapshot.dim:
            raise EmbedderMismatchError(
                stored=EmbedderSpec(snapshot.embedder_id, snapshot.dim),
                requested=EmbedderSpec(embedder.model_id, embedder.dim),
                where=f"router snapshot {snapshot.version or '(unwritten)'}",
            )
        self.snapshot = snapshot
        self.embedder = embedder
        self.settings = settings
        table = snapshot.clusters
        self.lookup: ClusterLookup = lookup or MatrixClusterLookup(table.vectors, table.scopes)
        self._templaters = {app: QueryTemplater(d) for app, d in snapshot.dictionaries.items()}
        self._templates: dict[TemplateKey, TemplateEntry] = {(t.app, t.scope, t.template): t for t in snapshot.templates}
        self.safety = SafetyRules(
            snapshot.catalog, frozenset(settings.never_small), check_tool_sets=snapshot.scope_mode in ("tools+context", "tools")
        )
        self.budget: ErrorBudget = budget_of(settings)
        for row, label in enumerate(table.labels):
            if label == "simple":
                self.budget.seed(table.key(row), successes=float(table.dominant[row]), total=float(table.sizes[row]))
        for t in snapshot.templates:
            self.budget.seed(t.key, successes=float(t.dominant), total=float(t.size))
        for p in snapshot.programs:
            agreed, support = p.prior
            self.budget.seed(p.key, successes=float(agreed), total=float(support))
        # A known query's budget starts from the query match's calibration (all known queries pooled,
        # as a pooled program starts from its family): its own few records would not admit it.
        self._queries: dict[tuple[str, str], QueryEntry] = {(q.scope, q.norm): q for q in snapshot.queries}
        known = snapshot.thresholds["query"]
        for q in snapshot.queries:
            self.budget.seed(q.key, successes=known.correct, total=known.routed)
        self.templates = TemplateTier(
            snapshot.programs, dict(snapshot.dictionaries), never_small=settings.never_small, allows=self.budget.allows
        )
        th = snapshot.thresholds
        self.query_threshold = th["query"].value
        self.match_threshold = th["match"].value
        self.template_threshold = th["template"].value
        self.classifier_threshold = th["classifier"].value
        self._scope_mode: ScopeMode = snapshot.scope_mode  # type: ignore[assignment]
        self._empty_templater = QueryTemplater(EntityDictionary())

    @property
    def version(self) -> str:
        """The snapshot's version (``r<hex>``)."""
        return self.snapshot.version

    # -- deciding ------------------------------------------------------------------------------
    def prepare(self, request: ServeRequest, scope: str | None = None) -> PreparedQuery:
        """The request's scope and its normalised template text (:mod:`odia_stream.keys`, as the learner);
        ``scope``: the request's scope where the caller has computed it already."""
        templater = self._templaters.get(request.app, self._empty_templater)
        if scope is None:
            return TemplatedQuery.of_record(request, self._scope_mode, templater)
        return TemplatedQuery.of(request.app, scope, templater.template(request.query))

    def _large(self, reason: Reason, stage: Stage, t0: float, embed_ms: float, function: str | None = None,
               score: float | None = None, key: str | None = None) -> Decision:
        return Decision("large", reason, function, score, stage, key, embed_ms,
                        (time.perf_counter() - t0) * 1000.0, self.version)

    def _precheck(self, request: ServeRequest, t0: float) -> Decision | None:
        if not normalize_query(request.query) or not any(ch.isalnum() for ch in request.query):
            return self._large(Reason.NO_QUERY, "safety", t0, 0.0)
        reason = self.safety.precheck(request)
        return self._large(reason, "safety", t0, 0.0) if reason is not None else None

    def _known(self, request: ServeRequest, scope: str, t0: float) -> Decision | None:
        """The query match: a known query answered with one function (no templating, no embedding)."""
        if not self._queries:
            return None
        entry = self._queries.get((scope, normalize_query(request.query)))
        if entry is None or entry.lower_bound < self.query_threshold:
            return None
        return self._finish(request, _Candidate(entry.function, entry.lower_bound, "query", Reason.QUERY_MATCH,
                                                entry.key), t0, 0.0)

    def _finish(self, request: ServeRequest, candidate: _Candidate, t0: float, embed_ms: float) -> Decision:
        """The safety rules and the error budget on a stage's candidate."""
        veto = self.safety.check(candidate.function, request)
        if veto is not None:
            return self._large(veto, "safety", t0, embed_ms, candidate.function, candidate.score, candidate.key)
        if candidate.key is not None and not self.budget.allows(candidate.key):
            return self._large(Reason.ERROR_BUDGET, candidate.stage, t0, embed_ms, candidate.function, candidate.score,
                               candidate.key)
        return Decision("small", candidate.reason, candidate.function, candidate.score, candidate.stage, candidate.key,
                        embed_ms, (time.perf_counter() - t0) * 1000.0, self.version)

    def _route(self, request: ServeRequest, prep: PreparedQuery, vector: np.ndarray, t0: float, embed_ms: float) -> Decision:
        table = self.snapshot.clusters
        candidate: _Candidate | None = None
        hit = self.lookup.nearest(vector, prep.scope)
        if hit is not None and hit.score >= self.match_threshold:
            label = table.labels[hit.row]
            if label == "simple":
                candidate = _Candidate(str(table.functions[hit.row]), hit.score, "match", Reason.CLUSTER_MATCH,
                                       table.key(hit.row))
            elif label == "complex":
                return self._large(Reason.COMPLEX_CLUSTER, "match", t0, embed_ms, table.functions[hit.row],
                                   hit.score, table.key(hit.row))
        template_key = prep.template_key
        if candidate is None and template_key is not None:
            entry = self._templates.get(template_key)
            if entry is not None and entry.lower_bound >= self.template_threshold:
                candidate = _Candidate(entry.function, entry.lower_bound, "template", Reason.TEMPLATE_MATCH, entry.key)
        if candidate is None:
            model = self.snapshot.classifier
            if model is None or not math.isfinite(self.classifier_threshold):
                return self._large(Reason.BELOW_THRESHOLD, "classifier", t0, embed_ms)
            features = np.concatenate(
                [vector, context_features(request.query, request.history, len(request.tools))]
            )
            cls, p = model.best(features)
            if cls == COMPLEX:
                return self._large(Reason.PREDICTED_COMPLEX, "classifier", t0, embed_ms, None, p)
            if p < self.classifier_threshold:
                return self._large(Reason.BELOW_THRESHOLD, "classifier", t0, embed_ms, cls, p)
            key = None
            if hit is not None and table.labels[hit.row] == "simple" and table.functions[hit.row] == cls:
                key = table.key(hit.row)
            candidate = _Candidate(cls, p, "classifier", Reason.CLASSIFIER, key)
        return self._finish(request, candidate, t0, embed_ms)

    def decide(self, request: ServeRequest) -> Decision:
        """Route one request (embedding included in ``decide_ms``)."""
        t0 = time.perf_counter()
        early = self._precheck(request, t0)
        if early is not None:
            return early
        scope = scope_of(request, self._scope_mode)
        known = self._known(request, scope, t0)
        if known is not None:
            return known
        prep = self.prepare(request, scope)
        e0 = time.perf_counter()
        vector = self.embedder.embed([prep.text])[0]
        embed_ms = (time.perf_counter() - e0) * 1000.0
        return self._route(request, prep, vector, t0, embed_ms)

    def decide_many(self, requests: Sequence[ServeRequest]) -> list[Decision]:
        """Route several requests with one embedding batch (each decision reports its share of it)."""
        t0 = time.perf_counter()
        out: list[Decision | None] = [self._precheck(r, t0) for r in requests]
        scopes: dict[int, str] = {}
        for i, d in enumerate(out):
            if d is None:
                scopes[i] = scope_of(requests[i], self._scope_mode)
                out[i] = self._known(requests[i], scopes[i], t0)
        todo = [i for i, d in enumerate(out) if d is None]
        if todo:
            preps = [self.prepare(requests[i], scopes[i]) for i in todo]
            e0 = time.perf_counter()
            vectors = self.embedder.embed([p.text for p in preps])
            embed_ms = (time.perf_counter() - e0) * 1000.0 / len(todo)
            for i, prep, vector in zip(todo, preps, vectors, strict=True):
                out[i] = self._route(requests[i], prep, vector, t0, embed_ms)
        return [d for d in out if d is not None]

    def model_answers(self, function: str | None) -> bool:
        """Whether the small model may be sent a request routed small with ``function`` (the paired
        adapter is trusted with it; the template tier answers any routed function)."""
        allowed = self.snapshot.model_functions
        return function is not None and (allowed is None or function in allowed)

    def template_answer(self, request: ServeRequest, function: str | None, *, check_required: bool = True) -> TemplateAnswer:
        """The template tier's answer to ``request`` routed small with ``function`` (templating
        included in its time): a call, or why it falls through."""
        t0 = time.perf_counter()
        return self.templates.answer(request, self.prepare(request), function, check_required=check_required, started=t0)

    # -- feedback ------------------------------------------------------------------------------
    def record_agreement(self, cluster_id: Hashable, agreed: bool) -> None:
        """Record a shadow check of a cluster (its ``c…`` key, ``t…`` template key, ``p…`` program
        key or integer id)."""
        self.budget.record(budget_key(cluster_id), agreed)

    def close(self) -> None:
        """Release the lookup's store, if it holds one."""
        close = getattr(self.lookup, "close", None)
        if callable(close):
            close()


def index_lookup(settings: OdiaSettings, snapshot: RouterSnapshot) -> IndexClusterLookup:
    """A stage-1 lookup through the configured cluster store, in a collection of this snapshot's
    own (``<collection>-<version>``; under ``<state_dir>/router-index`` for the embedded engine),
    filled with the snapshot's clusters when it is new."""
    s = settings.store
    collection = f"{s.collection}-{snapshot.version or 'unwritten'}"
    location = str(settings.state_dir / "router-index") if s.backend == "edge" else (s.url or ":memory:")
    index = open_cluster_index(s.backend, location, collection, snapshot.embedder_id, snapshot.dim, **server_options(s))
    table = snapshot.clusters
    if index.count() != len(table):
        fill_index(index, [int(x) for x in table.ids], table.vectors, table.scopes, table.labels)
    return IndexClusterLookup(index, {int(cid): i for i, cid in enumerate(table.ids)})


def open_router(
    settings: OdiaSettings,
    *,
    version: str | None = None,
    adapter_version: str | None = None,
    embedder: Embedder | None = None,
    lookup: ClusterLookup | None = None,
) -> Router:
    """The router of snapshot ``version`` (else the newest for ``adapter_version``) under the
    configured snapshot directory, with the configured embedder unless one is given. Raises
    :class:`~odia_stream.routing.snapshot.SnapshotError` when none fits and
    :class:`~odia_stream.store.EmbedderMismatchError` when the embedder is not the snapshot's."""
    info = find_snapshot(snapshot_root(settings), version=version, adapter_version=adapter_version)
    snapshot = load_snapshot(info.path)
    if embedder is None:
        from odia_stream.clustering.factory import open_embedder

        embedder = open_embedder(settings)
    if lookup is None and settings.router.lookup == "index":
        lookup = index_lookup(settings, snapshot)
    return Router(snapshot, embedder, settings.router, lookup=lookup)
