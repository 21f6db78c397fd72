"""The small generator's prompt and output format, used by both the trainer and serving.

Prompt (chat messages, roles system/user/assistant only): a system message with the offered
tools (compact lines or full JSON schemas) and the output instruction, then up to
``max_history_turns`` recent turns (earlier calls written as the model writes calls, tool
results as user text), then the query.

When the function is given (``function_given``, formats 2 and 4: the router has chosen it, and the
trainer renders each example with its own function), the system message shows only that
function and the output is only its arguments object, ``{"<argument>":<value>}``, constrained to
that function's argument schema. The system message then depends on the function alone (and on
the conversation's system context), so an engine can reuse its cached prefix for every request
of that function. Otherwise (formats 1 and 3) the output is the call as compact JSON,

* ``no_output_prefix`` on: ``{"<function>":{<arguments>}}``: the text starts with the call
  itself, without a ``<tool_call>`` wrapper and without the constant ``{"name":`` /
  ``"arguments":`` tokens, yet it is still JSON, so a structured-output decoder can hold it to
  :attr:`RenderedPrompt.output_schema`;
* off: ``<tool_call>\\n{"name":"<function>","arguments":{<arguments>}}\\n</tool_call>`` (the
  usual function-calling format: the baseline of the token measurements).

With ``alias_arguments`` (formats 1 and 2) argument names are single-token aliases in prompt and
output, and :func:`parse_output` maps them back; by default (formats 3 and 4) they are written as
declared, which a small model maps to the query far better. Changing any text here changes what
adapters were trained on: bump :data:`PROMPT_FORMAT_VERSION` when you do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from odia_stream.context import Turn
from odia_stream.evaluation.output_schema import arguments_schema, build_output_schema
from odia_stream.prompting.aliases import ArgumentAliases
from odia_stream.prompting.compact import render_tools_compact, render_tools_json
from odia_stream.settings import PromptSettings
from schemas import ChatMessage, FunctionCall, ToolSpec

#: Version of the prompt/output text format of the default settings (recorded with every trained
#: adapter; serving refuses an adapter trained on another format). 1: the model chooses the function,
#: arguments under aliases; 2: the function is given, aliases; 3: the model chooses, arguments under
#: their declared names; 4: the function is given, declared names (the default).
PROMPT_FORMAT_VERSION = 4

#: The prompt options are the ``prompt`` settings group.
PromptOptions = PromptSettings

#: How a call is written: ``keyed`` ``{"f":{...}}``, ``name_arguments`` ``{"name":"f","arguments":{...}}``,
#: ``wrapped`` = name_arguments inside ``<tool_call>`` tags.
CallStyle = Literal["keyed", "name_arguments", "wrapped"]

WRAP_OPEN = "<tool_call>"
WRAP_CLOSE = "</tool_call>"

FULL_INTRO = (
    "You are a function calling AI model. You are provided with function signatures within "
    "<tools></tools> XML tags. You may call one of these functions to assist with the user query. "
    "Don't make assumptions about what values to plug into functions. Here are the available tools:"
)
COMPACT_INTRO = "Call one of these functions for the user's last message (* = required argument):"
#: Format 2 (the function is given): the intro and the instruction, the same for every function.
GIVEN_INTRO = "Call this function for the user's last message (* = required argument):"
GIVEN_FULL_INTRO = (
    "You are a function calling AI model. Call the function whose signature is within <tools></tools> "
    "XML tags for the user query. Don't make assumptions about what values to plug into it:"
)
GIVEN_INSTRUCTION = 'Reply with only its arguments as JSON: {"<argument>":<value>}'
_INSTRUCTIONS: dict[tuple[CallStyle, bool], str] = {
    ("keyed", True): 'Reply with only the call as JSON: {"<function>":{"<argument>":<value>}}',
    ("keyed", False): (
        "Return only a json object whose single key is the function name and whose value is the object of "
        'arguments: {"<function-name>": <args-dict>}'
    ),
    ("wrapped", True): (
        "Reply with only the call inside <tool_call></tool_call> tags:\n"
        '<tool_call>\n{"name":"<function>","arguments":{"<argument>":<value>}}\n</tool_call>'
    ),
    ("wrapped", False): (
        "For the function call, return a json object with the function name and arguments within "
        "<tool_call></tool_call> XML tags:\n"
        '<tool_call>\n{"name": <function-name>, "arguments": <args-dict>}\n</tool_call>'
    ),
}


class OutputParseError(ValueError):
    """The model's output is not a call in the expected format."""


class PromptRecord(Turn, Protocol):
    """What a prompt and its target are rendered from (``FCLogEvent`` and ``TrainingRecord`` fit)."""

    @property
    def call(self) -> FunctionCall | None: ...


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt: chat messages, the argument aliases in force and the output's JSON Schema."""

    messages: list[dict[str, str]]
    aliases: ArgumentAliases
    output_schema: dict[str, Any]
    options: PromptOptions
    tools: tuple[ToolSpec, ...]
    #: The given function (formats 2 and 4): the output is only its arguments object.
    function: str | None = None

    @property
    def style(self) -> CallStyle:
        """How calls are written in this prompt's format (history calls; the output too when the model chooses)."""
        return call_style(self.options)

    @property
    def format_version(self) -> int:
        """The prompt format this prompt is in (see :data:`PROMPT_FORMAT_VERSION`)."""
        return _format_version(self.function is not None, self.options.alias_arguments)

    @property
    def chars(self) -> int:
        """Characters of the messages' contents (what serving sizes its small-path latency estimates by)."""
        return sum(len(m.get("content") or "") for m in self.messages)


def call_style(options: PromptOptions) -> CallStyle:
    """The output style the options select."""
    return "keyed" if options.no_output_prefix else "wrapped"


def _format_version(given: bool, aliased: bool) -> int:
    return (2 if given else 1) + (0 if aliased else 2)


def prompt_format_version(options: PromptOptions) -> int:
    """The prompt format that ``options`` train and serve in (what an adapter records; see
    :data:`PROMPT_FORMAT_VERSION`)."""
    return _format_version(options.function_given, options.alias_arguments)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_call_text(
    call: FunctionCall, aliases: ArgumentAliases, style: CallStyle, *, strict: bool = True
) -> str:
    """``call`` written in ``style`` with aliased argument names (compact JSON, UTF-8 kept).

    ``strict``: an argument the function does not declare raises ``UnknownArgumentError``;
    otherwise (history calls) undeclared names are written as they are.
    """
    args = aliases.aliased_arguments(call.name, call.arguments, strict=strict)
    if style == "keyed":
        return _dumps({call.name: args})
    body = _dumps({"name": call.name, "arguments": args})
    return f"{WRAP_OPEN}\n{body}\n{WRAP_CLOSE}" if style == "wrapped" else body


def recent_turns(history: Sequence[ChatMessage], max_turns: int) -> tuple[list[str], list[ChatMessage]]:
    """``(context, messages)``: the contents of system messages (kept whole: they hold facts the
    arguments may need), and the non-system messages of the last ``max_turns`` turns (a turn
    starts at a user message)."""
    context = [m.content for m in history if m.role == "system" and m.content]
    convo = [m for m in history if m.role != "system"]
    if max_turns <= 0:
        return context, []
    starts = [i for i, m in enumerate(convo) if m.role == "user"]
    if len(starts) > max_turns:
        convo = convo[starts[-max_turns] :]
    return context, convo


def _system_text(
    tools: Sequence[ToolSpec], aliases: ArgumentAliases, options: PromptOptions, context: list[str],
    given: bool = False,
) -> str:
    if given:
        instruction, intro, full_intro = GIVEN_INSTRUCTION, GIVEN_INTRO, GIVEN_FULL_INTRO
    else:
        instruction = _INSTRUCTIONS[(call_style(options), options.compact_schemas)]
        intro, full_intro = COMPACT_INTRO, FULL_INTRO
    if options.compact_schemas:
        listing = render_tools_compact(tools, aliases, options.compact_description_chars)
        text = f"{intro}\n{listing}\n{instruction}"
    else:
        text = f"{full_intro}\n<tools>\n{render_tools_json(tools, aliases)}\n</tools>\n{instruction}"
    if context:
        text += "\nContext:\n" + "\n".join(context)
    return text


def _history_messages(
    convo: Sequence[ChatMessage], aliases: ArgumentAliases, options: PromptOptions
) -> list[tuple[str, str]]:
    style = call_style(options)
    out: list[tuple[str, str]] = []
    for m in convo:
        if m.role == "assistant":
            parts = [render_call_text(tc.function, aliases, style, strict=False) for tc in m.tool_calls or ()]
            if m.content:
                parts.append(m.content)
            out.append(("assistant", "\n".join(parts)))
        elif m.role == "tool":
            result = m.content or ""
            text = (
                f"Result: {result}"
                if options.compact_schemas
                else f"<tool_response>\n{result}\n</tool_response>"
            )
            out.append(("user", text))
        else:
            out.append(("user", m.content or ""))
    return out


def _merged(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Consecutive messages of one role joined, so roles alternate (some chat templates insist)."""
    messages: list[dict[str, str]] = []
    for role, content in pairs:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + content
        else:
            messages.append({"role": role, "content": content})
    return messages


def render_prompt(
    tools: Sequence[ToolSpec],
    history: Sequence[ChatMessage],
    query: str,
    options: PromptOptions,
    function: str | None = None,
) -> RenderedPrompt:
    """The chat messages for ``query`` (ready for a tokenizer's chat template with a generation prompt).

    ``function``: the function the call must be (the router's choice; the record's own function
    in training). With ``options.function_given`` the prompt then shows only that function and
    the output is its arguments object (formats 2 and 4); without a function, or with the option
    off, every offered tool is shown and the model chooses (formats 1 and 3).

    Raises ``ValueError`` for an empty query or a given function that is not offered, and
    ``ToolSchemaError`` when no tool is offered or a tool's schema is unusable.
    """
    if not query.strip():
        raise ValueError("query is empty")
    tools = tuple(tools)
    aliases = ArgumentAliases.for_tools(tools) if options.alias_arguments else ArgumentAliases.identity(tools)
    context, convo = recent_turns(history, options.max_history_turns)
    given = function if options.function_given else None
    if given is not None:
        tool = next((t for t in tools if t.name == given), None)
        if tool is None:
            raise ValueError(f"function {given!r} is not among the offered tools")
        schema = arguments_schema(tool, aliases)
        system = _system_text([tool], aliases, options, context, given=True)
    else:
        schema = build_output_schema(tools, aliases=aliases, keyed=call_style(options) == "keyed")
        system = _system_text(tools, aliases, options, context)
    pairs = [("system", system), *_history_messages(convo, aliases, options), ("user", query)]
    return RenderedPrompt(_merged(pairs), aliases, schema, options, tools, given)


def render_target(call: FunctionCall, prompt: RenderedPrompt) -> str:
    """The completion the model is trained to write for ``call`` (aliased, compact JSON): the call
    (the model chooses) or only its arguments object (the function given).

    Raises ``ValueError`` when the function is not offered (or not the given one) or an argument
    is not declared.
    """
    if call.name not in prompt.aliases.functions:
        raise ValueError(f"function {call.name!r} is not among the prompt's offered tools")
    if prompt.function is not None:
        if call.name != prompt.function:
            raise ValueError(f"the prompt gives function {prompt.function!r}, the call is {call.name!r}")
        return _dumps(prompt.aliases.aliased_arguments(call.name, call.arguments, strict=True))
    return render_call_text(call, prompt.aliases, prompt.style)


def render_record(record: PromptRecord, options: PromptOptions) -> tuple[RenderedPrompt, str]:
    """Prompt and target of a logged record, the record's own function given where the options
    say so (raises ``ValueError`` when it has no call)."""
    if record.call is None:
        raise ValueError("the record has no call to train on")
    prompt = render_prompt(record.tools, record.history, record.query, options, record.call.name)
    return prompt, render_target(record.call, prompt)


def _snippet(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def parse_output(text: str, prompt: RenderedPrompt) -> FunctionCall:
    """The call in the model's ``text``, argument aliases mapped back (with the function given the
    text is the given function's arguments object).

    A ``<tool_call>`` wrapper is accepted in either style. Raises :class:`OutputParseError` when
    the text is not exactly one JSON call (the function given: one JSON object) in the prompt's
    style. Whether the call fits the offered tools is
    :func:`~odia_stream.evaluation.validate_call`'s question.
    """
    body = text.strip()
    if body.startswith(WRAP_OPEN):
        body = body[len(WRAP_OPEN) :]
        if body.rstrip().endswith(WRAP_CLOSE):
            body = body.rstrip()[: -len(WRAP_CLOSE)]
        body = body.strip()
    if not body:
        raise OutputParseError("output is empty")
    try:
        value, end = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        raise OutputParseError(f"output is not JSON ({exc.msg} at char {exc.pos}): {_snippet(body)}") from exc
    if body[end:].strip():
        raise OutputParseError(f"text after the call: {_snippet(body[end:].strip())}")
    if not isinstance(value, dict):
        raise OutputParseError(f"output must be a JSON object, got {type(value).__name__}")
    if prompt.function is not None:
        name, args = prompt.function, value
    elif prompt.style == "keyed":
        if len(value) != 1:
            raise OutputParseError(f"output must have exactly one key (the function name), got {len(value)}")
        name, args = next(iter(value.items()))
    else:
        unknown = set(value) - {"name", "arguments"}
        if "name" not in value or unknown:
            raise OutputParseError(
                f'output must be {{"name": ..., "arguments": {{...}}}}, got keys {sorted(value)}'
            )
        name, args = value["name"], value.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise OutputParseError(f"arguments is a string but not JSON: {exc.msg}") from exc
    if not isinstance(name, str) or not name.strip():
        raise OutputParseError(f"function name must be a non-empty string, got {_snippet(str(name))}")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise OutputParseError(f"arguments of {name!r} must be a JSON object, got {type(args).__name__}")
    try:
        return FunctionCall(name=name, arguments=prompt.aliases.real_arguments(name, args))
    except (ValidationError, ValueError) as exc:
        raise OutputParseError(f"not a valid call: {exc}") from exc
