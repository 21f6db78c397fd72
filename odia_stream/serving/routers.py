"""Loading the router snapshot a ``ModelUpdate`` names (:func:`odia_stream.routing.open_router`).

The embedder is opened once per process and shared by every router loaded afterwards (snapshots
of one deployment share the embedder; :class:`~odia_stream.routing.Router` refuses a mismatch).
"""

from __future__ import annotations

import threading

from odia_stream.embedding.protocol import Embedder
from odia_stream.serving.router_api import RouterLike, RouterLoader
from odia_stream.settings import OdiaSettings

__all__ = ["router_loader_for"]


def router_loader_for(settings: OdiaSettings) -> RouterLoader:
    """``version -> Router`` over the configured snapshot directory and embedder."""
    lock = threading.Lock()
    embedder: list[Embedder] = []

    def load(version: str) -> RouterLike:
        from odia_stream.clustering.factory import open_embedder
        from odia_stream.routing import open_router

        with lock:
            if not embedder:
                embedder.append(open_embedder(settings, threads=settings.embedding.router_threads))
            return open_router(settings, version=version, embedder=embedder[0])

    return load
