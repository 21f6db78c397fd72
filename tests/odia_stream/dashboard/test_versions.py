"""Promoted versions (model-updates, last per generator) and serving versions (responses)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from odia_stream.dashboard import VersionBoard
from schemas import ModelUpdate, RouterUpdate, ServeResponse

At = Callable[[float], datetime]


def test_last_update_per_generator_wins_rollback_included(make_update: Callable[..., ModelUpdate], at: At) -> None:
    b = VersionBoard()
    b.apply_update("small", make_update("small", "v1", router_version="r1", at=at(0)))
    b.apply_update("small", make_update("small", "v2", router_version="r2", previous="v1", at=at(60)))
    b.apply_update("other", make_update("other", "o1", at=at(5)))
    assert [(p.generator, p.version, p.router_version) for p in b.promoted()] == [
        ("other", "o1", "r1"), ("small", "v2", "r2")
    ]
    # A rollback re-sends the older update: it is the current one now.
    b.apply_update("small", make_update("small", "v1", router_version="r1", at=at(0)))
    assert [p.version for p in b.promoted()] == ["o1", "v1"]
    b.apply_update("other", None)
    assert [p.generator for p in b.promoted()] == ["small"]
    with pytest.raises(ValueError, match="differs from its generator"):
        b.apply_update("small", make_update("other", "x"))


def test_a_router_sent_alone_shows_with_no_adapter(make_update: Callable[..., ModelUpdate]) -> None:
    b = VersionBoard()
    b.apply_update("small", make_update("small", "v1", router_version="r1"))
    b.apply_update("small", RouterUpdate(kind="router_only", generator="small", router_version="r2", reason="rejected"))
    [p] = b.promoted()
    assert (p.generator, p.version, p.router_version, p.base_model, p.eval_metrics) == ("small", None, "r2", None, {})


def test_serving_versions_are_the_newest_named_by_responses(make_response: Callable[..., ServeResponse], at: At) -> None:
    b = VersionBoard()
    assert b.serving is None
    b.apply_response(make_response("a", at=at(10), adapter_version="g2", router_version="r2"))
    b.apply_response(make_response("b", at=at(5), adapter_version="g1", router_version="r1"))  # arrives late
    assert (b.serving.adapter_version, b.serving.router_version) == ("g2", "r2")  # type: ignore[union-attr]
    # The large model answered: the router is named, the generator is not; the generator stays.
    b.apply_response(make_response("c", served_by="large", at=at(20), adapter_version=None, router_version="r3"))
    s = b.serving
    assert s is not None and (s.adapter_version, s.router_version, s.answered_at) == ("g2", "r3", at(20))
    b.apply_response(make_response("d", at=at(30), adapter_version=None, router_version=None))
    assert b.serving == s
