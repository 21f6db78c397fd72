"""From a rendered prompt to a generation request: the token budget of prompt format 2."""

from __future__ import annotations

from odia_stream.generation.calls import request_for
from odia_stream.generation.json_stop import arguments_token_budget, json_object_end
from odia_stream.prompting import render_prompt
from odia_stream.settings import PromptSettings
from schemas import FCLogEvent


def test_with_the_function_given_the_budget_is_what_its_arguments_need(snips_events: list[FCLogEvent]) -> None:
    ev = next(e for e in snips_events if e.call and e.call.name == "BookRestaurant")
    options = PromptSettings(string_value_tokens=16)
    given = render_prompt(ev.tools, [], ev.query, options, "BookRestaurant")
    budget = arguments_token_budget(given.output_schema, 16)
    n_args = len(given.output_schema["properties"])
    assert n_args >= 5 and 3 + 7 * n_args <= budget <= 3 + (6 + 16) * n_args
    assert request_for(given, None).max_new_tokens == budget
    assert request_for(given, None, max_new_tokens=20).max_new_tokens == 20  # the backend's cap wins
    assert request_for(given, None, max_new_tokens=500).max_new_tokens == budget
    # Format 1 (the model chooses among every tool) keeps the caller's cap.
    every = render_prompt(ev.tools, [], ev.query, options)
    assert request_for(every, None, max_new_tokens=96).max_new_tokens == 96
    assert request_for(every, None).max_new_tokens is None


def test_the_object_end_ignores_braces_inside_strings() -> None:
    assert json_object_end('{"a":"} {"}') == len('{"a":"} {"}')
    assert json_object_end('{"a":"x\\"}"') is None
    assert json_object_end("no object yet") is None and json_object_end("") is None
