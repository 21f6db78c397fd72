"""Prompt rendering, targets and output parsing on real records, in every option combination."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odia_stream import prompting
from odia_stream.datasets import load_dataset
from odia_stream.evaluation import validate_call
from odia_stream.prompting import OutputParseError, PromptOptions, UnknownArgumentError
from schemas import FCLogEvent, FunctionCall

ALL_OPTIONS = [
    PromptOptions(function_given=g, compact_schemas=c, alias_arguments=a, no_output_prefix=n)
    for g, c, a, n in itertools.product([True, False], repeat=4)
]


@pytest.fixture(scope="module")
def records(snips_events: list[FCLogEvent], hammerbench_events: list[FCLogEvent]) -> list[FCLogEvent]:
    """Real records with a call: SNIPS intents and HammerBench turns (first turns and follow-ups)."""
    hb = [e for e in hammerbench_events if e.call is not None]
    return [e for e in snips_events[:60] if e.call] + hb[:: max(1, len(hb) // 240)]


@pytest.mark.parametrize(
    "options",
    ALL_OPTIONS,
    ids=lambda o: f"g{o.function_given:d}c{o.compact_schemas:d}a{o.alias_arguments:d}n{o.no_output_prefix:d}",
)
def test_target_round_trips_and_fits_the_output_schema(
    records: list[FCLogEvent], options: PromptOptions
) -> None:
    checked = 0
    for ev in records:
        call = ev.call
        assert call is not None
        declared = next(t for t in ev.tools if t.name == call.name).function.argument_names()
        if not set(call.arguments) <= set(declared):
            with pytest.raises(UnknownArgumentError):  # a real teacher mistake: not trainable
                prompting.render_record(ev, options)
            continue
        prompt, target = prompting.render_record(ev, options)
        assert prompting.parse_output(target, prompt) == call, (ev.event_id, target)
        assert prompt.format_version == prompting.prompt_format_version(options)
        if options.function_given:  # formats 2 and 4: only the arguments object, whatever the call style
            obj = written = json.loads(target)
        else:
            body = target.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
            assert (body != target) == (not options.no_output_prefix)
            obj = json.loads(body)
            written = obj[call.name] if options.no_output_prefix else obj["arguments"]
            assert next(iter(obj)) == (call.name if options.no_output_prefix else "name")
        # Arguments are written in the schema's order (constrained decoders emit properties in it).
        declared = [k for k in prompt.aliases.mapping(call.name) if k in call.arguments]
        assert list(written) == [prompt.aliases.alias(call.name, k) for k in declared]
        if options.alias_arguments:
            assert all(len(k) <= 2 for k in written)
        else:
            assert list(written) == declared
        # The structured-output schema accepts the target exactly when the call validates (types).
        fits = jsonschema.Draft202012Validator(prompt.output_schema).is_valid(obj)
        assert fits == validate_call(call, ev.tools, check_required=False).ok
        checked += 1
    assert checked > 200


def test_messages_are_a_well_formed_chat(records: list[FCLogEvent]) -> None:
    for ev in records:
        for options in (ALL_OPTIONS[0], ALL_OPTIONS[-1]):
            prompt = prompting.render_prompt(ev.tools, ev.history, ev.query, options)
            roles = [m["role"] for m in prompt.messages]
            assert roles[0] == "system" and roles[-1] == "user"
            assert set(roles[1:]) <= {"user", "assistant"}
            assert all(a != b for a, b in itertools.pairwise(roles)), roles
            assert prompt.messages[-1]["content"].endswith(ev.query)
            assert all(isinstance(m["content"], str) and m["content"] for m in prompt.messages)
            for tool in ev.tools:
                assert tool.name in prompt.messages[0]["content"]


def _last_call(ev: FCLogEvent) -> FunctionCall:
    return [m for m in ev.history if m.tool_calls][-1].tool_calls[-1].function  # type: ignore[index]


def test_history_keeps_recent_turns_and_writes_earlier_calls_as_text(
    hammerbench_events: list[FCLogEvent],
) -> None:
    ev = next(
        e
        for e in hammerbench_events
        if e.call
        and sum(m.role == "user" for m in e.history) >= 2
        and any(m.tool_calls for m in e.history)
        and any(
            t.name == _last_call(e).name and set(_last_call(e).arguments) <= set(t.function.argument_names())
            for t in e.tools
        )
    )
    user_turns = [m.content for m in ev.history if m.role == "user"]
    assert len(set(user_turns)) == len(user_turns)
    for options in (
        PromptOptions(max_history_turns=1),
        PromptOptions(max_history_turns=1, no_output_prefix=False),
    ):
        prompt = prompting.render_prompt(ev.tools, ev.history, ev.query, options)
        text = "\n".join(m["content"] for m in prompt.messages[1:])
        assert user_turns[-1] in text and all(t not in text for t in user_turns[:-1])
        # The last earlier call is written as the model writes calls, aliased like targets are.
        written = prompting.render_call_text(_last_call(ev), prompt.aliases, prompt.style)
        assert any(written in m["content"] for m in prompt.messages if m["role"] == "assistant"), written
    all_turns = prompting.render_prompt(ev.tools, ev.history, ev.query, PromptOptions(max_history_turns=10))
    assert all(t in "\n".join(m["content"] for m in all_turns.messages) for t in user_turns)
    none = prompting.render_prompt(ev.tools, ev.history, ev.query, PromptOptions(max_history_turns=0))
    assert [m["role"] for m in none.messages] == ["system", "user"]


def test_system_messages_of_the_history_are_kept_as_context(datasets_dir: Path) -> None:
    # HammerBench's external-knowledge records (no call expected) carry the facts as a system message.
    events = load_dataset(datasets_dir / "hammerbench" / "zh" / "ir_ST_External.json", limit=50)
    ev = next(e for e in events if any(m.role == "system" for m in e.history))
    context, _ = prompting.recent_turns(ev.history, 0)
    assert context
    prompt = prompting.render_prompt(ev.tools, ev.history, ev.query, PromptOptions(max_history_turns=0))
    assert all(c in prompt.messages[0]["content"] for c in context)


def test_aliases_are_single_tokens_of_the_small_model(
    records: list[FCLogEvent], small_tokenizer: Any
) -> None:
    seen: set[str] = set()
    for ev in records:
        prompt = prompting.render_prompt(ev.tools, ev.history, ev.query, PromptOptions(alias_arguments=True))
        for fn in prompt.aliases.functions:
            mapping = prompt.aliases.mapping(fn)
            assert len(set(mapping.values())) == len(mapping)
            seen.update(mapping.values())
    assert len(seen) >= 10
    for alias in seen:
        assert len(small_tokenizer.encode(alias, add_special_tokens=False)) == 1, alias
        # ... also where they stand in the output, between JSON quotes.
        pieces = small_tokenizer.convert_ids_to_tokens(
            small_tokenizer.encode('{"' + alias + '":1}', add_special_tokens=False)
        )
        assert alias in pieces, pieces


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_argument_values_round_trip(snips_events: list[FCLogEvent], data: st.DataObject) -> None:
    ev = next(e for e in snips_events if e.call and e.call.name == "BookRestaurant")
    tool = next(t for t in ev.tools if t.name == "BookRestaurant")
    values = st.one_of(
        st.text(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none(),
        st.lists(st.text(max_size=5), max_size=3),
    )
    args = data.draw(st.dictionaries(st.sampled_from(tool.function.argument_names()), values, max_size=6))
    options = data.draw(st.sampled_from(ALL_OPTIONS))
    call = FunctionCall(name="BookRestaurant", arguments=args)
    prompt = prompting.render_prompt(ev.tools, [], ev.query, options, "BookRestaurant")
    assert prompting.parse_output(prompting.render_target(call, prompt), prompt) == call


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Sure! Here is the call", "not JSON"),
        ('{"GetWeather":{"a":"x"}} and more', "text after"),
        ('["GetWeather"]', "JSON object"),
        ('{"GetWeather":{},"PlayMusic":{}}', "exactly one key"),
        ('{"GetWeather":"city=x"}', "must be a JSON object"),
        ('{"":{}}', "non-empty string"),
        ('{"GetWeather":{"a":"x","city":"y"}}', "given twice"),
        ('{"GetWeather":{"a":"x"', "not JSON"),
    ],
)
def test_malformed_output_raises_a_clear_error(
    snips_events: list[FCLogEvent], text: str, message: str
) -> None:
    ev = snips_events[0]
    prompt = prompting.render_prompt(ev.tools, [], ev.query, PromptOptions(alias_arguments=True))
    assert prompt.aliases.alias("GetWeather", "city") == "a"
    with pytest.raises(OutputParseError, match=message):
        prompting.parse_output(text, prompt)


def test_parsing_in_each_style(snips_events: list[FCLogEvent]) -> None:
    ev = snips_events[0]
    keyed = prompting.render_prompt(ev.tools, [], ev.query, PromptOptions(alias_arguments=True))
    wrapped = prompting.render_prompt(ev.tools, [], ev.query, PromptOptions(no_output_prefix=False, alias_arguments=True))
    want = FunctionCall(name="GetWeather", arguments={"city": "Paris"})
    assert prompting.parse_output(' {"GetWeather":{"a":"Paris"}}\n', keyed) == want
    assert prompting.parse_output('<tool_call>\n{"GetWeather":{"a":"Paris"}}\n</tool_call>', keyed) == want
    assert (
        prompting.parse_output(
            '<tool_call>\n{"name":"GetWeather","arguments":{"a":"Paris"}}\n</tool_call>', wrapped
        )
        == want
    )
    assert (
        prompting.parse_output('{"name":"GetWeather","arguments":"{\\"a\\":\\"Paris\\"}"}', wrapped) == want
    )
    with pytest.raises(OutputParseError):  # two keys in keyed style
        prompting.parse_output('{"name":"GetWeather","arguments":{"a":"Paris"}}', keyed)
    # A call of a function that is not offered parses (validation escalates it), names untouched.
    assert prompting.parse_output('{"Nope":{"a":1}}', keyed) == FunctionCall(name="Nope", arguments={"a": 1})


def test_bad_input_gets_clear_errors(snips_events: list[FCLogEvent]) -> None:
    ev = snips_events[0]
    prompt = prompting.render_prompt(ev.tools, [], ev.query, PromptOptions())
    with pytest.raises(ValueError, match="not among the prompt's offered tools"):
        prompting.render_target(FunctionCall(name="Nope"), prompt)
    with pytest.raises(UnknownArgumentError, match="'town' is not declared"):
        prompting.render_target(FunctionCall(name="GetWeather", arguments={"town": "x"}), prompt)
    with pytest.raises(ValueError, match="query is empty"):
        prompting.render_prompt(ev.tools, [], "  ", PromptOptions())
    with pytest.raises(ValueError, match="no tools offered"):
        prompting.render_prompt([], [], "hello", PromptOptions())


def test_with_the_function_given_the_prompt_shows_it_alone_and_its_system_part_is_shared(
    records: list[FCLogEvent], snips_events: list[FCLogEvent]
) -> None:
    options = PromptOptions()
    assert options.function_given and prompting.prompt_format_version(options) == prompting.PROMPT_FORMAT_VERSION == 4
    # Each combination of "function given" and "aliased names" is its own version (adapters record it).
    versions = {prompting.prompt_format_version(PromptOptions(function_given=g, alias_arguments=a))
                for g in (True, False) for a in (True, False)}
    assert versions == {1, 2, 3, 4}
    by_function: dict[str, list[dict[str, str]]] = {}
    for ev in records:
        assert ev.call is not None
        # What serving renders for the router's function is what the trainer rendered for the record.
        served = prompting.render_prompt(ev.tools, ev.history, ev.query, options, ev.call.name)
        try:
            trained, _ = prompting.render_record(ev, options)
        except prompting.UnknownArgumentError:
            continue
        assert served.messages == trained.messages and served.output_schema == trained.output_schema
        system = served.messages[0]["content"]
        others = {t.name for t in ev.tools} - {ev.call.name}
        assert ev.call.name in system and not any(f"\n{n}:" in system or system.startswith(f"{n}") for n in others)
        assert set(served.output_schema["properties"]) == set(served.aliases.mapping(ev.call.name).values())
        if not ev.history:
            by_function.setdefault(ev.call.name, []).append(served.messages[0])
    # Every request of a function (without conversation context) starts with the same system
    # message: an engine caches that prefix once per function.
    shared = [msgs for msgs in by_function.values() if len(msgs) > 1]
    assert shared and all(m == msgs[0] for msgs in shared for m in msgs)
    # Much shorter than the all-tools prompt of format 1.
    ev = next(e for e in snips_events if e.call and e.call.name == "PlayMusic")
    one = prompting.render_prompt(ev.tools, [], ev.query, options, "PlayMusic")
    every = prompting.render_prompt(ev.tools, [], ev.query, options)
    assert every.format_version == 3 and len(one.messages[0]["content"]) * 3 < len(every.messages[0]["content"])


def test_with_the_function_given_the_output_is_its_arguments_only(snips_events: list[FCLogEvent]) -> None:
    ev = snips_events[0]
    prompt = prompting.render_prompt(ev.tools, [], ev.query, PromptOptions(alias_arguments=True), "GetWeather")
    assert prompt.function == "GetWeather" and prompt.format_version == 2
    want = FunctionCall(name="GetWeather", arguments={"city": "Paris"})
    assert prompting.render_target(want, prompt) == '{"a":"Paris"}'
    assert prompting.parse_output(' {"a":"Paris"}\n', prompt) == want
    # By default the arguments keep their declared names (format 4).
    named = prompting.render_prompt(ev.tools, [], ev.query, PromptOptions(), "GetWeather")
    assert named.format_version == 4 and prompting.render_target(want, named) == '{"city":"Paris"}'
    assert prompting.parse_output('{"city":"Paris"}', named) == want and "\n city:" in named.messages[0]["content"]
    assert prompting.parse_output("{}", prompt) == FunctionCall(name="GetWeather")
    # A format-1 call is read as an undeclared argument, which validation refuses (escalated).
    keyed = prompting.parse_output('{"GetWeather":{"a":"Paris"}}', prompt)
    assert not validate_call(keyed, ev.tools).ok
    with pytest.raises(OutputParseError, match="JSON object"):
        prompting.parse_output('["Paris"]', prompt)
    with pytest.raises(ValueError, match="gives function 'GetWeather'"):
        prompting.render_target(FunctionCall(name="PlayMusic"), prompt)
    with pytest.raises(ValueError, match="'Nope' is not among the offered tools"):
        prompting.render_prompt(ev.tools, [], ev.query, PromptOptions(), "Nope")
    # With the option off the function is not given: the model chooses among every tool.
    off = prompting.render_prompt(ev.tools, [], ev.query, PromptOptions(function_given=False), "GetWeather")
    assert off.function is None and off.format_version == 3
