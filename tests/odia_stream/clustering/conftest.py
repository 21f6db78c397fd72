"""Fixtures for learner tests: a real embedder shared by the session, real datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from odia_stream.clustering import OnlineClusterLearner, SourcedItem
from odia_stream.clustering.factory import open_embedder, open_learner
from odia_stream.embedding import Embedder
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> Embedder:
    """The default embedder (packaged weights), loaded once."""
    return open_embedder(OdiaSettings(state_dir=model_cache.parent))


def _as_items(events: list[FCLogEvent], topic: str = "fc", partition: int = 0, start: int = 0) -> list[SourcedItem[FCLogEvent]]:
    """Events as if read from one partition starting at ``start``."""
    return [SourcedItem(topic, partition, start + i, e) for i, e in enumerate(events)]


def _feed(learner: OnlineClusterLearner, items: list[SourcedItem[FCLogEvent]], batch: int = 256) -> None:
    """Process ``items`` in offset-aligned batches."""
    from odia_stream.clustering import OffsetAlignedBatcher

    b: OffsetAlignedBatcher[FCLogEvent] = OffsetAlignedBatcher(batch)
    for it in items:
        for ready in b.add(it):
            learner.process_batch(ready)
    for ready in b.flush():
        learner.process_batch(ready)


@pytest.fixture()
def make_learner(tmp_path: Path, embedder: Embedder) -> Callable[..., OnlineClusterLearner]:
    """Open learners on one state dir (call again to "restart")."""
    opened: list[OnlineClusterLearner] = []

    def _make(state: str = "state", **clustering: object) -> OnlineClusterLearner:
        s = OdiaSettings(state_dir=tmp_path / state)
        if clustering:
            s = s.model_copy(update={"clustering": s.clustering.model_copy(update=clustering)})
        learner = open_learner(s, embedder=embedder)
        opened.append(learner)
        return learner

    yield _make
    for learner in opened:
        try:
            learner.close()
        except Exception:  # already closed by the test
            pass


@pytest.fixture(scope="session")
def as_items() -> Callable[..., list[SourcedItem[FCLogEvent]]]:
    """``as_items(events, start=0)``: events as read from one partition."""
    return _as_items


@pytest.fixture(scope="session")
def feed() -> Callable[..., None]:
    """``feed(learner, items)``: process items in offset-aligned batches."""
    return _feed
