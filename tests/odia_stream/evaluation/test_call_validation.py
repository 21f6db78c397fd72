"""Call validation against the offered tools, on real records and real teacher mistakes."""

from __future__ import annotations

from collections import Counter

import pytest

from odia_stream.evaluation import ToolSchemaError, parameters_schema, validate_call
from schemas import FCLogEvent, FunctionCall, FunctionSpec, ToolSpec


def _spec(ev: FCLogEvent) -> FunctionSpec:
    assert ev.call is not None
    return next(t.function for t in ev.tools if t.name == ev.call.name)


def test_real_snips_calls_are_valid(snips_events: list[FCLogEvent]) -> None:
    results = [validate_call(e.call, e.tools) for e in snips_events if e.call]
    assert results and all(r.ok for r in results), next(r.errors for r in results if not r.ok)


def test_hammerbench_calls_valid_except_the_teachers_real_mistakes(
    hammerbench_events: list[FCLogEvent],
) -> None:
    codes: Counter[str] = Counter()
    partial = 0
    for e in hammerbench_events:
        if e.call is None:
            continue
        r = validate_call(e.call, e.tools, check_required=False)
        codes.update(r.codes)
        partial += not validate_call(e.call, e.tools).ok
    # Slot-filling logs call with partial arguments: only the required check flags those.
    assert partial > 0
    # A handful of real mistakes of the large model: values of the wrong type, undeclared names.
    assert set(codes) <= {"wrong_type", "unknown_argument"}
    assert 0 < sum(codes.values()) < 0.02 * len(hammerbench_events)


def test_a_real_undeclared_argument_is_reported(hammerbench_events: list[FCLogEvent]) -> None:
    ev = next(
        e
        for e in hammerbench_events
        if e.call and any(k not in _spec(e).argument_names() for k in e.call.arguments)
    )
    assert ev.call is not None
    r = validate_call(ev.call, ev.tools, check_required=False)
    assert not r.ok and r.codes == ("unknown_argument",)
    assert r.errors[0].argument not in _spec(ev).argument_names()


def test_each_kind_of_error_on_a_mutated_real_call(hammerbench_events: list[FCLogEvent]) -> None:
    # A tool with a `float` (non-standard) typed argument: mapped to JSON Schema's number.
    ev = next(
        e
        for e in hammerbench_events
        if e.call
        and any(
            p.get("type") == "float" and k in e.call.arguments
            for k, p in _spec(e).parameters["properties"].items()
        )
        and any(p.get("type") == "string" for p in _spec(e).parameters["properties"].values())
    )
    call, spec = ev.call, _spec(ev)
    assert call is not None
    assert validate_call(call, ev.tools, check_required=False).ok
    number_arg = next(
        k
        for k, p in spec.parameters["properties"].items()
        if p.get("type") == "float" and k in call.arguments
    )
    assert parameters_schema(spec)["properties"][number_arg]["type"] == "number"

    def codes(
        args: dict[str, object], tools: list[ToolSpec] = ev.tools, name: str = call.name
    ) -> tuple[str, ...]:
        return validate_call(FunctionCall(name=name, arguments=args), tools, check_required=False).codes

    assert codes(call.arguments, name="NoSuch.function") == ("unknown_function",)
    assert codes({**call.arguments, number_arg: "not a number"}) == ("wrong_type",)
    assert codes({**call.arguments, number_arg: None}) == ("wrong_type",)
    assert codes({**call.arguments, "zzz": 1}) == ("unknown_argument",)
    missing = validate_call(FunctionCall(name=call.name, arguments={}), ev.tools)
    assert set(missing.codes) == {"missing_required"}
    assert {e.argument for e in missing.errors} == set(spec.required_arguments())
    # Enum and range constraints, added to the real schema.
    props = dict(spec.parameters["properties"])
    string_arg = next(k for k, p in props.items() if p.get("type") == "string")
    props[string_arg] = {**props[string_arg], "enum": ["alpha", "beta"]}
    props[number_arg] = {**props[number_arg], "minimum": 0}
    strict = ToolSpec(
        function=FunctionSpec(name=call.name, parameters={**spec.parameters, "properties": props})
    )
    assert codes({string_arg: "gamma"}, [strict]) == ("not_in_enum",)
    assert codes({string_arg: "beta", number_arg: -1}, [strict]) == ("schema_violation",)
    assert codes({string_arg: "beta", number_arg: 2.5}, [strict]) == ()
    # Messages say what is wrong.
    msg = str(
        validate_call(
            FunctionCall(name=call.name, arguments={string_arg: "gamma"}), [strict], check_required=False
        ).errors[0]
    )
    assert "gamma" in msg and "alpha" in msg


def test_unusable_tool_schema_is_an_error_not_a_crash(snips_events: list[FCLogEvent]) -> None:
    ev = snips_events[0]
    assert ev.call is not None
    spec = _spec(ev)
    bad = ToolSpec(
        function=FunctionSpec(
            name=spec.name, parameters={"type": "object", "properties": {"x": {"type": "datetime"}}}
        )
    )
    r = validate_call(FunctionCall(name=spec.name, arguments={"x": "now"}), [bad])
    assert r.codes == ("invalid_tool_schema",) and "datetime" in str(r.errors[0])
    with pytest.raises(ToolSchemaError, match="unknown type"):
        parameters_schema(bad.function)
