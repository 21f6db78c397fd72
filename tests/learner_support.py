"""What the dashboard tests fold: a real learner's output for SNIPS events, batch by batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from odia_stream.clustering import SourcedItem
from odia_stream.clustering.factory import open_embedder, open_learner
from odia_stream.settings import OdiaSettings
from schemas import ClusterState, FCLogEvent, IngestSummary


@dataclass(frozen=True)
class LearnerOutput:
    """Every state the learner published batch by batch (as the ingest worker does), each
    cluster's final state, and the learner's ``IngestSummary`` at the end."""

    published: list[ClusterState]
    final: dict[str, ClusterState]
    summary: IngestSummary


def learn_in_batches(state_dir: Path, model_cache: Path, events: list[FCLogEvent], batch: int = 150) -> LearnerOutput:
    """Run a fresh learner (state in ``state_dir``) over ``events`` in batches of ``batch``."""
    learner = open_learner(
        OdiaSettings(state_dir=state_dir), embedder=open_embedder(OdiaSettings(state_dir=model_cache.parent))
    )
    try:
        published: list[ClusterState] = []
        for start in range(0, len(events), batch):
            items = [SourcedItem("fc", 0, start + i, e) for i, e in enumerate(events[start : start + batch])]
            published.extend(learner.process_batch(items).changed)
        final = {s.cluster_id: s for s in (learner.cluster_state(c) for c in learner.clusters.values())}
        return LearnerOutput(published, final, learner.ingest_summary())
    finally:
        learner.close()
