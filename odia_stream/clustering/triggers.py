"""When to ask the trainer for a new generator: the ``RetrainTrigger`` policy, and manual triggers.

Per app, :class:`RetrainTriggerPolicy` counts the simple-cluster training examples added since
the app's last trigger and the clusters whose label flipped (simple or not) since then. A trigger
is due when either count reaches its threshold (``triggers.min_new_examples``,
``triggers.min_label_flips``); the app's counts then start again. The counts are part of the
learner's state (:meth:`RetrainTriggerPolicy.to_json`, committed with each batch).

>>> from odia_stream.settings import TriggerSettings
>>> policy = RetrainTriggerPolicy(TriggerSettings(min_new_examples=10, min_label_flips=2))
>>> policy.record({"music": 6}, {})
[]
>>> policy.record({"music": 5}, {"music": ["c00000000000000ff"]})
[DueTrigger(app='music', reason='new_examples', new_examples=11, flipped_clusters=('c00000000000000ff',))]
>>> policy.to_json()
'{"music": {"flipped": [], "new": 0}}'
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from odia_stream.clustering.records import Cluster
from odia_stream.clustering.views import LearnerViews
from odia_stream.keys import cluster_key
from odia_stream.settings import TriggerSettings
from schemas import FCLogEvent, RetrainTrigger, TriggerReason


@dataclass(frozen=True)
class DueTrigger:
    """An app whose counts reached a threshold: why, and the counts since its last trigger."""

    app: str
    reason: TriggerReason
    new_examples: int
    flipped_clusters: tuple[str, ...]


@dataclass
class _Progress:
    """One app's counts since its last trigger."""

    new: int = 0
    flipped: list[str] = field(default_factory=list)


def new_training_examples(touched: Iterable[tuple[Cluster, Sequence[FCLogEvent]]]) -> Counter[str]:
    """Per app of the touched simple clusters: the batch's records calling the cluster's dominant
    function (new training examples; an app whose simple clusters got none counts 0)."""
    per_app: Counter[str] = Counter()
    for cluster, events in touched:
        if cluster.label != "simple":
            continue
        per_app[cluster.app] += sum(1 for e in events if e.call and e.call.name == cluster.dominant_function)
    return per_app


def flipped_by_app(flipped: Iterable[Cluster]) -> dict[str, list[str]]:
    """Keys of the flipped clusters, per app."""
    out: dict[str, list[str]] = defaultdict(list)
    for cluster in flipped:
        out[cluster.app].append(cluster_key(cluster.cluster_id))
    return dict(out)


class RetrainTriggerPolicy:
    """Counts new examples and label flips per app and says which apps are due (module doc)."""

    def __init__(self, settings: TriggerSettings, saved: str = "{}") -> None:
        self.settings = settings
        self._progress: dict[str, _Progress] = {}
        self.restore(saved)

    def restore(self, saved: str) -> None:
        """Replace the counts with those saved by :meth:`to_json` (empty for ``""``)."""
        self._progress = {
            app: _Progress(int(p["new"]), list(p["flipped"])) for app, p in json.loads(saved or "{}").items()
        }

    def to_json(self) -> str:
        """The counts as canonical JSON (``{app: {"flipped": [...], "new": n}}``)."""
        progress = {app: {"new": p.new, "flipped": p.flipped} for app, p in self._progress.items()}
        return json.dumps(progress, sort_keys=True)

    def record(self, new_examples: Mapping[str, int], flipped: Mapping[str, Iterable[str]]) -> list[DueTrigger]:
        """Add one batch's new examples and flipped cluster keys (per app); the apps now due, by
        name, whose counts restart."""
        due: list[DueTrigger] = []
        for app in sorted(set(new_examples) | set(flipped)):
            p = self._progress.setdefault(app, _Progress())
            p.new += new_examples.get(app, 0)
            p.flipped = sorted(set(p.flipped) | set(flipped.get(app, ())))
            enough_new = p.new >= self.settings.min_new_examples
            if enough_new or len(p.flipped) >= self.settings.min_label_flips:
                due.append(DueTrigger(app, "new_examples" if enough_new else "labels_changed", p.new, tuple(p.flipped)))
                self._progress[app] = _Progress()
        return due

    def record_batch(
        self, touched: Iterable[tuple[Cluster, Sequence[FCLogEvent]]], flipped: Iterable[Cluster]
    ) -> list[DueTrigger]:
        """:meth:`record` for a learner batch: the touched groups' clusters (relabelled) with the
        batch's records of each group, and the clusters whose label flipped."""
        return self.record(new_training_examples(touched), flipped_by_app(flipped))


def retrain_trigger(state: LearnerViews, due: DueTrigger) -> RetrainTrigger:
    """The trigger of a due app, with the app's simple clusters and training examples in ``state``."""
    simple = [c for c in state.clusters.values() if c.app == due.app and c.label == "simple"]
    return RetrainTrigger(
        trigger_id=f"{due.app}:{state.store_version}",
        app=due.app,
        reason=due.reason,
        new_examples=due.new_examples,
        total_examples=sum(state.training_examples(c) for c in simple),
        simple_clusters=len(simple),
        flipped_clusters=list(due.flipped_clusters),
        store_version=state.store_version,
        embedder_id=state.embedder_id,
        created_at=datetime.now(UTC),
    )


def manual_trigger(state: LearnerViews, app: str = "default", *, trigger_id: str | None = None) -> RetrainTrigger:
    """A trigger asking the trainer to retrain ``app`` on ``state`` now (``odia trainer trigger``).

    Its figures (training examples, simple clusters) are the whole store's; the id is
    ``manual-<12 hex digits>`` unless ``trigger_id`` is given.
    """
    summary = state.summary()
    return RetrainTrigger(
        trigger_id=trigger_id or f"manual-{uuid.uuid4().hex[:12]}",
        app=app,
        reason="manual",
        new_examples=0,
        total_examples=summary.training_examples,
        simple_clusters=summary.simple,
        store_version=state.store_version,
        embedder_id=state.embedder_id or "unknown",
    )
