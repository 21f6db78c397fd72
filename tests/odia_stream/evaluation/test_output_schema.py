"""The structured-output schema accepts exactly the well-formed calls of the offered tools."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from odia_stream.evaluation import ToolSchemaError, build_output_schema, validate_call
from odia_stream.prompting import ArgumentAliases
from schemas import FCLogEvent


def _valid(instance: object, schema: dict[str, Any]) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(instance)


@pytest.mark.parametrize("keyed", [True, False])
def test_real_calls_fit_exactly_when_they_validate(hammerbench_events: list[FCLogEvent], keyed: bool) -> None:
    def as_output(name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {name: args} if keyed else {"name": name, "arguments": args}

    checked = 0
    for ev in hammerbench_events[:250]:
        if ev.call is None or not ev.call.arguments:
            continue
        aliases = ArgumentAliases.for_tools(ev.tools)
        schema = build_output_schema(ev.tools, aliases=aliases, keyed=keyed)
        jsonschema.Draft202012Validator.check_schema(schema)
        name, args = ev.call.name, ev.call.arguments
        if not set(args) <= set(aliases.mapping(name)):
            continue  # a real teacher mistake (undeclared argument), covered by validation tests
        aliased = aliases.aliased_arguments(name, args)
        # The schema and validate_call agree on every real call (types included).
        assert (
            _valid(as_output(name, aliased), schema)
            == validate_call(ev.call, ev.tools, check_required=False).ok
        )
        # Values of a type no argument has, unknown functions, and unaliased names are refused.
        for a in aliased:
            assert not _valid(as_output(name, {**aliased, a: {"x": 1}}), schema)
        assert not _valid(as_output("No.such.function", aliased), schema)
        if set(args) != set(aliased):
            assert not _valid(as_output(name, dict(args)), schema)
        checked += 1
    assert checked > 80


def test_required_arguments_are_only_forced_on_request(snips_events: list[FCLogEvent]) -> None:
    ev = next(e for e in snips_events if e.call and e.call.name == "AddToPlaylist")
    loose = build_output_schema(ev.tools)
    strict = build_output_schema(ev.tools, require_required=True)
    assert _valid({"AddToPlaylist": {}}, loose)
    assert not _valid({"AddToPlaylist": {}}, strict)
    assert _valid({"AddToPlaylist": {"playlist": "chill"}}, strict)
    assert not _valid({"AddToPlaylist": {"playlist": "chill"}, "GetWeather": {}}, loose)
    # Descriptions are annotations, not constraints: they are left out of the decoding schema.
    add = next(o for o in loose["anyOf"] if "AddToPlaylist" in o["properties"])
    assert add["properties"]["AddToPlaylist"]["properties"]["playlist"] == {"type": "string"}


def test_no_tools_is_a_clear_error() -> None:
    with pytest.raises(ToolSchemaError, match="no tools offered"):
        build_output_schema([])
