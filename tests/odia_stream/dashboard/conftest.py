"""Builders of the wire records the dashboard folds (real ``schemas`` models, validated)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from schemas import ClusterState, LatencyBreakdown, ModelUpdate, ServeResponse

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _state(cluster_id: str, size: int = 10, label: str = "simple", dominant: str | None = "play_music",
           version: int = 1, merged_into: str | None = None, samples: tuple[str, ...] = ("play jazz",)) -> ClusterState:
    counts = {dominant or "<none>": size}
    return ClusterState(
        cluster_id=cluster_id, app="music", scope="app:music|tools:x|ctx:-", size=size, unique_queries=size,
        function_counts=counts, dominant_function=dominant, dominant_share=1.0, share_lower_bound=0.7,
        label=label, training_examples=size if label == "simple" else 0, templates=["play <genre>"],
        sample_queries=list(samples), version=version, embedder_id="test-embedder", merged_into=merged_into,
    )


def _response(request_id: str, served_by: str = "small", total_ms: float = 100.0, at: datetime = T0,
              adapter_version: str | None = "g1", router_version: str | None = "r1") -> ServeResponse:
    return ServeResponse(
        request_id=request_id, call=None, served_by=served_by, route_reason="test",
        adapter_version=adapter_version, router_version=router_version,
        latency=LatencyBreakdown(route_ms=1.0, generate_ms=total_ms - 2, validate_ms=1.0, total_ms=total_ms),
        answered_at=at,
    )


def _update(generator: str = "small", version: str = "v1", router_version: str | None = "r1",
            previous: str | None = None, at: datetime = T0) -> ModelUpdate:
    return ModelUpdate(
        generator=generator, version=version, adapter_uri=f"file:///adapters/{version}", sha256="ab" * 32,
        base_model="smollm2-135m-instruct", eval_metrics={"call_accuracy": 0.95}, router_version=router_version,
        previous_version=previous, created_at=at,
    )


@pytest.fixture()
def make_state() -> Callable[..., ClusterState]:
    """``make_state(cluster_id, size=, label=, dominant=, version=, merged_into=, samples=)``."""
    return _state


@pytest.fixture()
def make_response() -> Callable[..., ServeResponse]:
    """``make_response(request_id, served_by=, total_ms=, at=, adapter_version=, router_version=)``."""
    return _response


@pytest.fixture()
def make_update() -> Callable[..., ModelUpdate]:
    """``make_update(generator=, version=, router_version=, previous=, at=)``."""
    return _update


@pytest.fixture()
def at() -> Callable[[float], datetime]:
    """``at(seconds)``: a fixed instant plus ``seconds``."""
    return lambda seconds: T0 + timedelta(seconds=seconds)
