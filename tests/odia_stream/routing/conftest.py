"""Fixtures for router tests: a real embedder, real learners (no Kafka) on a small synthetic app
and on real datasets, and the router snapshots built from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from odia_stream.clustering import OnlineClusterLearner
from odia_stream.clustering.factory import open_embedder, open_learner
from odia_stream.embedding import Embedder
from odia_stream.routing import RouterSnapshot, build_snapshot
from odia_stream.settings import OdiaSettings
from shop_app import feed, shop_events


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> Embedder:
    """The default embedder (packaged weights), loaded once."""
    embedder = open_embedder(OdiaSettings(state_dir=model_cache.parent))
    # An empty cache is falsy (``__len__``) and ``open_learner`` would then load another embedder.
    embedder.embed(["warm-up"])
    return embedder


def learner_settings(root: Path, **router: object) -> OdiaSettings:
    """Settings with their own state dir; ``router`` overrides router settings."""
    s = OdiaSettings(state_dir=root)
    return s.model_copy(update={"router": s.router.model_copy(update=router)})


@dataclass
class Built:
    """A learner trained on some events, its settings and the router snapshot built from it."""

    settings: OdiaSettings
    learner: OnlineClusterLearner
    snapshot: RouterSnapshot


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Built]:
    """The synthetic shop app learned in the default scope, and its router snapshot."""
    s = learner_settings(tmp_path_factory.mktemp("shop"), target_precision=0.95)
    learner = open_learner(s, embedder=embedder)
    feed(learner, shop_events())
    yield Built(s, learner, build_snapshot(learner, s, embedder))
    learner.close()


@pytest.fixture(scope="session")
def shop_context(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Built]:
    """The shop app learned in the ``context`` scope (tool sets are not part of the scope)."""
    s = learner_settings(tmp_path_factory.mktemp("shop-context"), target_precision=0.95)
    s = s.model_copy(update={"clustering": s.clustering.model_copy(update={"scope": "context"})})
    learner = open_learner(s, embedder=embedder)
    feed(learner, shop_events())
    yield Built(s, learner, build_snapshot(learner, s, embedder))
    learner.close()
