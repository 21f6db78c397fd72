"""Build the learner from settings: embedder, thresholds, cluster store, state and dictionaries."""

from __future__ import annotations

from odia_stream.clustering.learner import OnlineClusterLearner
from odia_stream.clustering.state_db import LearnerStateDB
from odia_stream.clustering.views import LearnerView
from odia_stream.embedding import EMBEDDER_PROFILES, CachedEmbedder, Embedder, build_embedder
from odia_stream.settings import OdiaSettings
from odia_stream.store import ClusterIndex, open_cluster_index
from odia_stream.store.factory import server_options
from odia_stream.templates import EntityDictionary
from odia_stream.templates.programs import ProgramRule


def thresholds_for(settings: OdiaSettings, model_id: str) -> tuple[float, float]:
    """(cluster_distance, merge_distance): explicit settings, else the embedder's calibrated profile.

    Raises ``ValueError`` for an embedder without a profile and no explicit thresholds, so one
    model's threshold is never silently used for another.
    """
    c = settings.clustering
    profile = EMBEDDER_PROFILES.get(model_id)
    if (c.cluster_distance is None or c.merge_distance is None) and profile is None:
        raise ValueError(
            f"no calibrated thresholds for embedder {model_id!r}: set ODIA_CLUSTERING__CLUSTER_DISTANCE and "
            "ODIA_CLUSTERING__MERGE_DISTANCE (measure them with odia_stream.embedding.calibrate_thresholds)"
        )
    cluster = c.cluster_distance if c.cluster_distance is not None else profile.cluster_distance  # type: ignore[union-attr]
    merge = c.merge_distance if c.merge_distance is not None else profile.merge_distance  # type: ignore[union-attr]
    return cluster, merge


def open_embedder(settings: OdiaSettings, *, threads: int | None = None) -> Embedder:
    """The configured embedder, with its cache (``threads``: see :func:`build_embedder`)."""
    inner = build_embedder(settings.embedding.model, settings.cache_dir, threads=threads)
    if settings.embedding.cache_entries <= 0:
        return inner
    return CachedEmbedder(inner, max_entries=settings.embedding.cache_entries)


def open_index(settings: OdiaSettings, embedder: Embedder) -> ClusterIndex:
    """The configured cluster store (embedded Qdrant engine under the state dir by default)."""
    s = settings.store
    location = str(settings.state_dir / "store") if s.backend == "edge" else (s.url or ":memory:")
    return open_cluster_index(s.backend, location, s.collection, embedder.model_id, embedder.dim, **server_options(s))


def dictionary_factory(settings: OdiaSettings) -> EntityDictionary:
    """A dictionary holding the user-supplied entity files."""
    d = EntityDictionary()
    for path in settings.entity_files:
        d.load(path)
    return d


def program_rule(settings: OdiaSettings) -> ProgramRule:
    """When a template's argument program is live: the template tier's support, the router's
    target precision and confidence, and its never-small functions."""
    r = settings.router
    return ProgramRule(
        settings.templates.min_support, r.target_precision, r.calibration_z, frozenset(r.never_small),
        pool=settings.templates.pool_families,
    )


def open_learner(settings: OdiaSettings, embedder: Embedder | None = None) -> OnlineClusterLearner:
    """Everything the ingest learner needs, opened from ``settings``."""
    embedder = embedder if embedder is not None else open_embedder(settings)
    cluster_distance, merge_distance = thresholds_for(settings, embedder.model_id)
    settings.learner_dir.mkdir(parents=True, exist_ok=True)
    return OnlineClusterLearner(
        embedder=embedder,
        index=open_index(settings, embedder),
        db=LearnerStateDB(settings.learner_dir / "learner.sqlite"),
        dictionary_factory=lambda: dictionary_factory(settings),
        clustering=settings.clustering,
        triggers=settings.triggers,
        templates=settings.templates,
        program_rule=program_rule(settings),
        cluster_distance=cluster_distance,
        merge_distance=merge_distance,
    )


def open_learner_view(settings: OdiaSettings) -> LearnerView:
    """A read-only snapshot of the learner state in ``settings.learner_dir`` (for the trainer and
    the router builder, which run beside the ingest worker that owns the state)."""
    return LearnerView(
        settings.learner_dir / "learner.sqlite",
        clustering=settings.clustering,
        templates=settings.templates,
        program_rule=program_rule(settings),
        dictionary_factory=lambda: dictionary_factory(settings),
    )
