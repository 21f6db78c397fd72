"""Argument aliases: a bijection per function, built from real tool schemas."""

from __future__ import annotations

from itertools import islice

import pytest

from odia_stream.prompting import ArgumentAliases, UnknownArgumentError, alias_names
from schemas import FCLogEvent


def test_alias_names_never_repeat() -> None:
    names = list(islice(alias_names(), 2000))
    assert len(set(names)) == len(names)
    assert names[:3] == ["a", "b", "c"] and names[26] == "aa"


def test_aliases_of_real_tools_map_back(hammerbench_events: list[FCLogEvent]) -> None:
    ev = next(e for e in hammerbench_events if e.call and len(e.call.arguments) >= 2)
    aliases = ArgumentAliases.for_tools(ev.tools)
    assert set(aliases.functions) == {t.name for t in ev.tools}
    call = ev.call
    assert call is not None
    aliased = aliases.aliased_arguments(call.name, call.arguments)
    assert aliased != call.arguments
    assert {aliases.real(call.name, a): v for a, v in aliased.items()} == call.arguments
    assert list(aliased) == sorted(aliased)  # schema order: a, b, c ...
    assert aliases.real_arguments(call.name, aliased) == call.arguments
    for real, alias in aliases.mapping(call.name).items():
        assert aliases.real(call.name, alias) == real
    identity = ArgumentAliases.identity(ev.tools)
    assert identity.aliased_arguments(call.name, call.arguments) == call.arguments
    with pytest.raises(UnknownArgumentError):
        aliases.alias(call.name, "not_declared")
    # History calls may use names the function does not declare: written as they are.
    assert aliases.aliased_arguments(call.name, {"not_declared": 1}, strict=False) == {"not_declared": 1}


def test_an_alias_used_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="alias 'a' used for"):
        ArgumentAliases({"f": {"x": "a", "y": "a"}})
