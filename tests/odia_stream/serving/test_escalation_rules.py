"""The escalation rules on real prompts and generations in the serving format."""

from __future__ import annotations

import pytest

from odia_stream.generation.calls import call_from
from odia_stream.generation.protocol import GenerationResult
from odia_stream.prompting import render_prompt
from odia_stream.serving.escalation import ESCALATION_REASONS, escalation_for
from odia_stream.settings import PromptSettings
from schemas import ToolSpec

TOOLS = [
    ToolSpec.model_validate(
        {
            "name": "set_alarm",
            "parameters": {
                "type": "object",
                "properties": {
                    "time": {"type": "string"},
                    "repeat": {"type": "string", "enum": ["daily", "weekdays", "once"]},
                    "volume": {"type": "integer"},
                },
                "required": ["time"],
            },
        }
    ),
    ToolSpec.model_validate(
        {"name": "play_music", "parameters": {"type": "object", "properties": {"song": {"type": "string"}}}}
    ),
]


def _checked(text: str, *, finish: str = "stop", aliases: bool = True, check_required: bool = True):  # noqa: ANN202
    options = PromptSettings(alias_arguments=aliases)
    prompt = render_prompt(TOOLS, [], "wake me at 7", options)
    result = GenerationResult(
        text=text, adapter_version="a-1", prompt_tokens=10, output_tokens=5, ms=1.0, finish_reason=finish
    )  # type: ignore[arg-type]
    return prompt, call_from(result, prompt, check_required=check_required)


def _alias(prompt, function: str, argument: str) -> str:  # noqa: ANN001
    return prompt.aliases.aliased_arguments(function, {argument: 1}, strict=True).popitem()[0]


def test_a_valid_call_is_served_with_aliases_mapped_back() -> None:
    prompt, _ = _checked("{}")
    a_time, a_repeat = _alias(prompt, "set_alarm", "time"), _alias(prompt, "set_alarm", "repeat")
    _, checked = _checked('{"set_alarm":{"%s":"07:00","%s":"daily"}}' % (a_time, a_repeat))
    assert escalation_for(checked, "set_alarm") is None
    assert checked.call is not None and checked.call.arguments == {"time": "07:00", "repeat": "daily"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sure, I will set an alarm", "parse_error"),
        ('{"set_alarm":{"time":"07:00"}} and more', "parse_error"),
        ('{"delete_everything":{}}', "invalid_call"),
        ('{"set_alarm":{}}', "invalid_call"),
        ('{"set_alarm":{"time":"07:00","colour":"red"}}', "invalid_call"),
        ('{"set_alarm":{"time":"07:00","volume":"loud"}}', "invalid_call"),
        ('{"set_alarm":{"time":"07:00","repeat":"sometimes"}}', "invalid_call"),
    ],
)
def test_bad_outputs_escalate(text: str, reason: str) -> None:
    _, checked = _checked(text, aliases=False)
    esc = escalation_for(checked, "set_alarm")
    assert esc is not None and esc.reason == reason and esc.route_reason == f"escalated:{reason}"
    assert esc.reason in ESCALATION_REASONS


def test_a_cut_off_output_is_truncated() -> None:
    _, checked = _checked('{"set_alarm":{"time":"07', finish="length", aliases=False)
    esc = escalation_for(checked, "set_alarm")
    assert esc is not None and esc.reason == "truncated"


def test_a_valid_call_of_another_function_than_predicted_escalates() -> None:
    _, checked = _checked('{"play_music":{"song":"Yesterday"}}', aliases=False)
    assert checked.ok
    esc = escalation_for(checked, "set_alarm")
    assert esc is not None and esc.reason == "function_mismatch"
    assert escalation_for(checked, None) is None


def test_missing_required_arguments_pass_when_not_required() -> None:
    _, checked = _checked('{"set_alarm":{"repeat":"daily"}}', aliases=False, check_required=False)
    assert escalation_for(checked, "set_alarm") is None
