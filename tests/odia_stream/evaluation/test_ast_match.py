"""AST match on cases taken from real dataset records, then mutated the ways a small model errs."""

from __future__ import annotations

from typing import Any

import pytest

from odia_stream.evaluation import MatchResult, ast_accuracy, ast_match, values_equal
from schemas import FCLogEvent, FunctionCall, FunctionSpec


def _spec(ev: FCLogEvent) -> FunctionSpec:
    assert ev.call is not None
    return next(t.function for t in ev.tools if t.name == ev.call.name)


def _with_args(call: FunctionCall, args: dict[str, Any]) -> FunctionCall:
    return FunctionCall(name=call.name, arguments=args)


@pytest.fixture(scope="module")
def snips_record(snips_events: list[FCLogEvent]) -> FCLogEvent:
    """A real SNIPS AddToPlaylist call with its required ``playlist`` and an optional argument."""
    return next(
        e
        for e in snips_events
        if e.call
        and e.call.name == "AddToPlaylist"
        and "playlist" in e.call.arguments
        and len(e.call.arguments) >= 2
    )


@pytest.fixture(scope="module")
def numeric_record(hammerbench_events: list[FCLogEvent]) -> FCLogEvent:
    """A real HammerBench call with an integer argument and at least one other argument."""
    return next(
        e
        for e in hammerbench_events
        if e.call
        and len(e.call.arguments) >= 2
        and any(isinstance(v, int) and not isinstance(v, bool) for v in e.call.arguments.values())
    )


@pytest.fixture(scope="module")
def boolean_record(hammerbench_events: list[FCLogEvent]) -> FCLogEvent:
    """A real HammerBench call with a boolean argument."""
    return next(
        e
        for e in hammerbench_events
        if e.call and any(isinstance(v, bool) for v in e.call.arguments.values())
    )


def test_the_reference_call_matches_itself(snips_record: FCLogEvent, numeric_record: FCLogEvent) -> None:
    for ev in (snips_record, numeric_record):
        assert ev.call is not None
        assert ast_match(ev.call, ev.call, _spec(ev)) == MatchResult(True, "match")


def test_wrong_function_name(snips_record: FCLogEvent) -> None:
    call = snips_record.call
    assert call is not None
    other = next(t.name for t in snips_record.tools if t.name != call.name)
    r = ast_match(FunctionCall(name=other, arguments=call.arguments), call, _spec(snips_record))
    assert (r.ok, r.reason) == (False, "wrong_function")


def test_missing_required_and_missing_optional_arguments(snips_record: FCLogEvent) -> None:
    call, spec = snips_record.call, _spec(snips_record)
    assert call is not None and "playlist" in spec.required_arguments()
    no_playlist = {k: v for k, v in call.arguments.items() if k != "playlist"}
    r = ast_match(_with_args(call, no_playlist), call, spec)
    assert (r.ok, r.reason, r.argument) == (False, "missing_required_argument", "playlist")
    optional = next(k for k in call.arguments if k != "playlist")
    r = ast_match(_with_args(call, {k: v for k, v in call.arguments.items() if k != optional}), call, spec)
    assert (r.ok, r.reason, r.argument) == (False, "missing_argument", optional)


def test_a_required_argument_the_reference_left_out_is_not_demanded(
    hammerbench_events: list[FCLogEvent],
) -> None:
    # HammerBench's large model calls with partial arguments while it asks for the rest.
    ev = next(
        e
        for e in hammerbench_events
        if e.call and e.call.arguments and set(_spec(e).required_arguments()) - set(e.call.arguments)
    )
    assert ev.call is not None
    assert ast_match(ev.call, ev.call, _spec(ev)).ok


def test_unknown_and_extra_arguments(snips_record: FCLogEvent) -> None:
    call, spec = snips_record.call, _spec(snips_record)
    assert call is not None
    r = ast_match(_with_args(call, {**call.arguments, "not_an_argument": "x"}), call, spec)
    assert (r.ok, r.reason, r.argument) == (False, "unknown_argument", "not_an_argument")
    declared_unused = next(a for a in spec.argument_names() if a not in call.arguments)
    r = ast_match(_with_args(call, {**call.arguments, declared_unused: "something"}), call, spec)
    assert (r.ok, r.reason, r.argument) == (False, "extra_argument", declared_unused)
    # Without the spec nothing is known to be undeclared, but the reference still has no such argument.
    r = ast_match(_with_args(call, {**call.arguments, "not_an_argument": "x"}), call, None)
    assert (r.ok, r.reason) == (False, "extra_argument")


def test_wrong_value_and_light_string_normalisation(snips_record: FCLogEvent) -> None:
    call, spec = snips_record.call, _spec(snips_record)
    assert call is not None
    playlist = call.arguments["playlist"]
    r = ast_match(_with_args(call, {**call.arguments, "playlist": playlist + " two"}), call, spec)
    assert (r.ok, r.reason, r.argument) == (False, "wrong_value", "playlist")
    shouted = f"  {playlist.upper()}. "
    assert ast_match(_with_args(call, {**call.arguments, "playlist": shouted}), call, spec).ok


def test_numbers_and_numeric_strings(numeric_record: FCLogEvent) -> None:
    call, spec = numeric_record.call, _spec(numeric_record)
    assert call is not None
    name, value = next(
        (k, v) for k, v in call.arguments.items() if isinstance(v, int) and not isinstance(v, bool)
    )
    for same in (str(value), f"{value}.0", float(value), f" {value} "):
        r = ast_match(_with_args(call, {**call.arguments, name: same}), call, spec)
        assert r.ok, (same, r)
    for different in (value + 1, str(value + 1), "many"):
        r = ast_match(_with_args(call, {**call.arguments, name: different}), call, spec)
        assert (r.ok, r.reason, r.argument) == (False, "wrong_value", name), different


def test_booleans_match_their_spelling_but_not_numbers(boolean_record: FCLogEvent) -> None:
    call, spec = boolean_record.call, _spec(boolean_record)
    assert call is not None
    name, value = next((k, v) for k, v in call.arguments.items() if isinstance(v, bool))
    assert ast_match(_with_args(call, {**call.arguments, name: str(value).upper()}), call, spec).ok
    assert not ast_match(_with_args(call, {**call.arguments, name: int(value)}), call, spec).ok
    assert not ast_match(_with_args(call, {**call.arguments, name: not value}), call, spec).ok


def test_null_and_default_count_as_not_given(snips_record: FCLogEvent) -> None:
    call = snips_record.call
    assert call is not None
    spec = _spec(snips_record)
    unused = next(a for a in spec.argument_names() if a not in call.arguments)
    assert ast_match(_with_args(call, {**call.arguments, unused: None}), call, spec).ok
    params = dict(spec.parameters)
    params["properties"] = {
        **params["properties"],
        unused: {**params["properties"][unused], "default": "any"},
    }
    with_default = FunctionSpec(name=spec.name, description=spec.description, parameters=params)
    assert ast_match(_with_args(call, {**call.arguments, unused: "ANY"}), call, with_default).ok


def test_calls_against_no_call(snips_record: FCLogEvent) -> None:
    call = snips_record.call
    assert ast_match(None, None, None) == MatchResult(True, "no_call")
    assert ast_match(call, None, None).reason == "unexpected_call"
    assert ast_match(None, call, None).reason == "missing_call"
    with pytest.raises(ValueError, match="not the expected function"):
        other = next(t.function for t in snips_record.tools if t.name != call.name)  # type: ignore[union-attr]
        ast_match(call, call, other)


def test_values_equal_on_nested_values() -> None:
    assert values_equal(["A b", 1], ["a-b", "1"])
    assert not values_equal(["a", "b"], ["b", "a"])
    assert values_equal({"x": "Yes.", "y": None}, {"x": "yes"})
    assert not values_equal({"x": 1}, {"x": 1, "z": 2})
    assert not values_equal("5.0", "50")


def test_ast_accuracy_counts_matches(snips_record: FCLogEvent, numeric_record: FCLogEvent) -> None:
    a, b = snips_record.call, numeric_record.call
    assert a is not None and b is not None
    pairs = [
        (a, a, _spec(snips_record)),
        (b, b, _spec(numeric_record)),
        (a, b, _spec(numeric_record)),
        (None, a),
    ]
    assert ast_accuracy(pairs) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        ast_accuracy([])
