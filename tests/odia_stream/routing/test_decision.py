"""Decisions: reason codes fit the route."""

from __future__ import annotations

import pytest

from odia_stream.routing import SMALL_REASONS, Decision, Reason


def _decision(route: str, reason: Reason, function: str | None = "f") -> Decision:
    return Decision(route, reason, function, 0.9, "match", None, 1.0, 2.0, "r1")  # type: ignore[arg-type]


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_fits_exactly_one_route(reason: Reason) -> None:
    right = "small" if reason in SMALL_REASONS else "large"
    wrong = "large" if right == "small" else "small"
    assert _decision(right, reason).route == right
    with pytest.raises(ValueError, match="does not fit"):
        _decision(wrong, reason)


def test_small_decisions_name_their_function_and_reasons_are_plain_strings() -> None:
    with pytest.raises(ValueError, match="needs the function"):
        _decision("small", Reason.CLUSTER_MATCH, None)
    assert Reason.ERROR_BUDGET == "error_budget" and f"{Reason.NO_QUERY}" == "no_query"
