"""Held-out scores for calibration, computed from the learner's state alone.

Every query group is scored as if it had never been learned (leave one group out):

* its query is templated as a new request would be: without the entity values that only its own
  call taught the dictionary (the learner templated it knowing its call's arguments; serving
  never does), and embedded again (:func:`held_out_template`);
* its own cluster's representative and function counts are recomputed without it (exactly, from
  the cluster's count-weighted sum of embeddings), the cluster is relabelled, and the nearest
  cluster of its scope is found again; template clusters are pooled without it the same way.

What the group's records called is the truth the thresholds are chosen against.

The query match (a request whose very query the learner knows) is calibrated by leaving one
*record* out instead (:func:`leave_one_record_out`): each record of a group is predicted from the
group's other records, as the next request of a known query is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from odia_stream.clustering.records import Cluster, QueryGroup
from odia_stream.keys import TemplatedQuery, TemplateKey, template_text
from odia_stream.labels import WilsonLabeler
from odia_stream.routing.error_budget import ErrorBudget
from odia_stream.routing.snapshot import ClusterTable, QueryEntry
from odia_stream.stats import dominant, wilson_lower_bound
from odia_stream.templates import EntityDictionary, QueryTemplater, Template, normalize_text, render_template


@dataclass(frozen=True)
class HeldOutMatch:
    """What a stage would have done for a held-out group: ``kind`` of the nearest (template)
    cluster (``simple``, ``complex``, ``undecided`` or ``none``), its function, the score
    (similarity or share bound; ``-inf`` for ``none``) and whether its error budget allows it."""

    kind: str
    function: str | None
    score: float
    allowed: bool


_NONE = HeldOutMatch("none", None, -math.inf, False)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def taught_values(call_arguments: Sequence[Mapping[str, object]]) -> frozenset[str]:
    """Normalised string argument values of a group's recorded calls (what its calls could teach)."""
    return frozenset(normalize_text(s).strip() for args in call_arguments for v in args.values() for s in _strings(v))


def held_out_template(
    query: str, templater: QueryTemplater, dictionary: EntityDictionary, taught: frozenset[str]
) -> Template:
    """The template a new request with ``query`` would get: values known only because this
    query's own call taught them (learned, counted once) stay as they are."""
    spans = []
    for span in templater.matcher.match(query):
        info = dictionary.get(span.type, span.value)
        only_ours = (
            info is not None and info.source == "learned" and info.count <= 1
            and normalize_text(span.value).strip() in taught
        )
        if not only_ours:
            spans.append(span)
    return render_template(query, spans)


def held_out_text(
    query: str, templater: QueryTemplater, dictionary: EntityDictionary, taught: frozenset[str]
) -> tuple[str, bool]:
    """The normalised :func:`held_out_template` text and whether it holds an entity."""
    template = held_out_template(query, templater, dictionary, taught)
    return template_text(template), template.has_entities


def routing_label(label: str, function: str | None, routable: Callable[[str | None], bool]) -> str:
    """The label the router acts on: ``simple`` only when the small model may answer ``function``."""
    return "undecided" if label == "simple" and not routable(function) else label


def leave_one_out_matches(
    groups: Sequence[QueryGroup],
    queries: np.ndarray,
    clusters: Mapping[int, Cluster],
    table: ClusterTable,
    labeler: WilsonLabeler,
    routable: Callable[[str | None], bool],
    budget: ErrorBudget,
    chunk: int = 2048,
) -> list[HeldOutMatch]:
    """Stage 1 for each group with itself left out of its cluster; ``queries`` are the groups'
    held-out query vectors (unit rows), the stored ``embedding`` is what the cluster holds of them."""
    row_of = {int(cid): i for i, cid in enumerate(table.ids)}
    rows_by_scope: dict[str, list[int]] = {}
    for i, scope in enumerate(table.scopes):
        rows_by_scope.setdefault(scope, []).append(i)
    ws_norm = np.array([float(np.linalg.norm(clusters[int(c)].weighted_sum)) for c in table.ids])
    out: list[HeldOutMatch] = [_NONE] * len(groups)
    by_scope: dict[str, list[int]] = {}
    for k, g in enumerate(groups):
        by_scope.setdefault(g.scope, []).append(k)
    for scope, members in by_scope.items():
        rows = rows_by_scope.get(scope, [])
        if not rows:
            continue
        pos_of = {r: p for p, r in enumerate(rows)}
        matrix = table.vectors[rows]
        for start in range(0, len(members), chunk):
            part = members[start : start + chunk]
            sims = queries[part] @ matrix.T
            for i, k in enumerate(part):
                g = groups[k]
                own = row_of[g.cluster_id]
                p = pos_of[own]
                cluster = clusters[g.cluster_id]
                counts = cluster.function_counts - g.function_counts
                # ws' = ws - count * stored; sim' = ws'.q / |ws'| with |ws'|^2 = |ws|^2 - 2 count ws.stored + count^2
                ws_q = ws_norm[own] * float(sims[i, p])
                ws_stored = ws_norm[own] * float(matrix[p] @ g.embedding)
                norm2 = ws_norm[own] ** 2 - 2 * g.count * ws_stored + g.count**2
                if not counts or norm2 <= 1e-9:
                    sims[i, p] = -np.inf
                else:
                    sims[i, p] = (ws_q - g.count * float(g.embedding @ queries[k])) / math.sqrt(norm2)
                j = int(np.argmax(sims[i]))
                score = float(sims[i, j])
                if not math.isfinite(score):
                    continue
                if j == p:
                    d = labeler.label(counts)
                    label = routing_label(d.label, d.dominant_function, routable)
                    fn, dominant, size = d.dominant_function, counts.get(d.dominant_function or "", 0), d.support
                else:
                    r = rows[j]
                    label, fn = table.labels[r], table.functions[r]
                    dominant, size = int(table.dominant[r]), int(table.sizes[r])
                allowed = label == "simple" and budget.prior_bound(dominant, size) >= budget.target
                out[k] = HeldOutMatch(label, fn, score, allowed)
    return out


def template_keys(
    groups: Sequence[QueryGroup], templater_of: Callable[[str], QueryTemplater]
) -> list[TemplateKey | None]:
    """Each group's template key under the full dictionary (``None`` without a known entity)."""
    return [TemplatedQuery.of(g.app, g.scope, templater_of(g.app).template(g.query)).template_key for g in groups]


def pool_templates(
    groups: Sequence[QueryGroup], keys: Sequence[TemplateKey | None]
) -> dict[TemplateKey, tuple[int, Counter[str]]]:
    """Per template key: the number of queries and their pooled function counts."""
    pooled: dict[TemplateKey, tuple[int, Counter[str]]] = {}
    for g, key in zip(groups, keys, strict=True):
        if key is None:
            continue
        n, counts = pooled.get(key, (0, Counter()))
        pooled[key] = (n + 1, counts + g.function_counts)
    return pooled


def leave_one_out_templates(
    groups: Sequence[QueryGroup],
    keys: Sequence[TemplateKey | None],
    held_out_keys: Sequence[TemplateKey | None],
    pooled: Mapping[TemplateKey, tuple[int, Counter[str]]],
    labeler: WilsonLabeler,
    routable: Callable[[str | None], bool],
    budget: ErrorBudget,
    min_queries: int = 2,
) -> list[HeldOutMatch]:
    """The template stage for each group: its held-out template key looked up among the template
    clusters, with the group itself left out of its own; the score is the template cluster's Wilson
    bound of its dominant share."""
    out: list[HeldOutMatch] = []
    for g, key, held in zip(groups, keys, held_out_keys, strict=True):
        if held is None or held not in pooled:
            out.append(_NONE)
            continue
        n, counts = pooled[held]
        rest = counts - g.function_counts if held == key else counts
        n = n - 1 if held == key else n
        if n < min_queries or not rest:
            out.append(_NONE)
            continue
        d = labeler.label(rest)
        label = routing_label(d.label, d.dominant_function, routable)
        allowed = label == "simple" and budget.prior_bound(rest.get(d.dominant_function or "", 0), d.support) >= budget.target
        out.append(HeldOutMatch(label, d.dominant_function, d.share_lower_bound, allowed))
    return out


def leave_one_record_out(
    groups: Sequence[QueryGroup], routable: Callable[[str | None], bool], z: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibration items of the query match: ``(scores, correct, total)``, one item per group and
    function called. Each record is predicted from its group's *other* records: their dominant
    function, scored with the Wilson lower bound (at ``z``) of its share of them; the item holds
    the records of one function (``total``) and, when that is the prediction, counts them
    ``correct``. Records with no other record of their query, or whose prediction the small model
    may not answer, score ``-inf``. When a query's answers are exchangeable (drawn alike, in any
    order), this is the precision of answering its next request from its past ones.

    >>> from collections import Counter
    >>> g = QueryGroup(1, "s", "a", "q", "q", 1, np.zeros(2), 4, Counter({"play": 3, "stop": 1}))
    >>> s, c, t = leave_one_record_out([g], lambda f: True, 0.0)
    >>> s.round(3).tolist(), c.tolist(), t.tolist()
    ([0.667, 1.0], [3.0, 0.0], [3.0, 1.0])
    """
    scores: list[float] = []
    correct: list[float] = []
    total: list[float] = []
    for g in groups:
        n = sum(g.function_counts.values())
        # Functions by (-count, name): leaving out one record of any function but the first keeps
        # the first dominant; leaving out one of the first's, it keeps it unless the second now
        # counts more, or as much and comes first alphabetically.
        ranked = sorted(((f, k) for f, k in g.function_counts.items() if k > 0), key=lambda fk: (-fk[1], fk[0]))
        for f, k in sorted(ranked):
            score, right = -math.inf, 0.0
            if n > 1:
                (top, k_top), second = ranked[0], ranked[1] if len(ranked) > 1 else None
                d, kept = top, (k_top - 1 if f == top else k_top)
                if f == top and second is not None and (second[1], top) > (kept, second[0]):
                    d, kept = second
                if routable(d):
                    score = wilson_lower_bound(kept, n - 1, z) if z > 0 else kept / (n - 1)
                    right = float(k) if d == f else 0.0
            scores.append(score)
            correct.append(right)
            total.append(float(k))
    return np.array(scores, dtype=float), np.array(correct, dtype=float), np.array(total, dtype=float)


def known_queries(
    groups: Sequence[QueryGroup], routable: Callable[[str | None], bool], z: float, threshold: float, limit: int
) -> tuple[QueryEntry, ...]:
    """The query match's table: groups whose dominant function the small model may answer and
    whose share bound (all their records, at ``z``) reaches ``threshold``; the ``limit`` with the
    most records when more qualify."""
    out: list[QueryEntry] = []
    if not math.isfinite(threshold):
        return ()
    for g in groups:
        n = sum(g.function_counts.values())
        if n < 2:
            continue
        d = dominant(g.function_counts)
        if d is None:
            continue
        k = g.function_counts[d]
        # As a snapshot writes it: compared with a threshold that is written so too (``as_written``).
        bound = round(wilson_lower_bound(k, n, z) if z > 0 else k / n, 9)
        if routable(d) and bound >= threshold:
            out.append(QueryEntry(g.scope, g.norm, d, bound, n, k))
    out.sort(key=lambda q: (-q.size, q.scope, q.norm))
    return tuple(sorted(out[:limit], key=lambda q: (q.scope, q.norm)))
