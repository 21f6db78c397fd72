"""An exact-text LRU cache in front of any embedder."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from odia_stream.embedding.protocol import Embedder, empty_embeddings


class CachedEmbedder:
    """Wraps an :class:`Embedder` with an LRU cache keyed by the exact text.

    Each :meth:`embed` call sends only the texts not in the cache to the inner embedder, in one
    batch (each distinct text once). ``misses`` counts texts sent to the inner embedder, ``hits``
    the texts answered without it. Same ``model_id`` and ``dim`` as the inner embedder.
    """

    def __init__(self, inner: Embedder, max_entries: int = 100_000) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self.inner = inner
        self.model_id: str = inner.model_id
        self.dim: int = inner.dim
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        """Drop every cached vector (counters are kept)."""
        with self._lock:
            self._rows.clear()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``, reusing cached rows; float32 ``(n, dim)`` with unit rows."""
        items = list(texts)
        if not items:
            return empty_embeddings(self.dim)
        found: dict[str, np.ndarray] = {}
        missing: list[str] = []
        queued: set[str] = set()
        with self._lock:
            for text in items:
                if text in found:
                    continue
                row = self._rows.get(text)
                if row is not None:
                    self._rows.move_to_end(text)
                    found[text] = row
                elif text not in queued:
                    queued.add(text)
                    missing.append(text)
        if missing:
            fresh = np.asarray(self.inner.embed(missing), dtype=np.float32)
            if fresh.shape != (len(missing), self.dim):
                raise ValueError(f"{self.model_id}: inner embedder returned shape {fresh.shape}")
            with self._lock:
                for text, row in zip(missing, fresh):
                    row = row.copy()
                    row.setflags(write=False)
                    found[text] = row
                    if self.max_entries:
                        self._rows[text] = row
                        self._rows.move_to_end(text)
                while len(self._rows) > self.max_entries:
                    self._rows.popitem(last=False)
        with self._lock:
            self.misses += len(missing)
            self.hits += len(items) - len(missing)
        return np.stack([found[text] for text in items]).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, entries={len(self._rows)}/{self.max_entries})"
