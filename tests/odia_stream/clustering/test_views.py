"""Read-only learner views: what another process sees equals what the live learner holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from odia_stream.clustering import LearnerView, OnlineClusterLearner
from odia_stream.clustering.factory import open_learner_view
from odia_stream.settings import OdiaSettings
from schemas import FCLogEvent


def test_view_matches_the_live_learner_and_never_writes(
    tmp_path: Path, as_items: Callable[..., list], feed: Callable[..., None],
    make_learner: Callable[..., OnlineClusterLearner], snips_events: list[FCLogEvent],
) -> None:
    learner = make_learner()
    feed(learner, as_items(snips_events[:600]))
    db_path = learner.db.path
    before = db_path.stat().st_mtime_ns
    view = open_learner_view(OdiaSettings(state_dir=tmp_path / "state"))
    try:
        assert view.summary() == learner.summary()
        assert view.embedder_id == learner.embedder_id
        some = max(learner.clusters.values(), key=lambda c: c.size)
        assert view.cluster_state(some).model_dump(exclude={"updated_at"}) == learner.cluster_state(some).model_dump(
            exclude={"updated_at"}
        )
        assert view.template_clusters() == learner.template_clusters()
        with pytest.raises(Exception, match="readonly|read-only"):
            view.db.set_meta("x", "y")
    finally:
        view.close()
    # The live learner keeps writing while a view is open, and a new view sees the new state.
    feed(learner, as_items(snips_events[600:900], start=600))
    with open_learner_view(OdiaSettings(state_dir=tmp_path / "state")) as v2:
        assert v2.summary().events == 900
    assert db_path.stat().st_mtime_ns >= before


def test_view_of_missing_state_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the ingest agents first"):
        LearnerView(tmp_path / "nope.sqlite", clustering=OdiaSettings().clustering)
