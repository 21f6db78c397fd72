"""From a rendered prompt to a checked call: the one path trainer evaluation and serving share.

``request_for`` turns a :class:`~odia_stream.prompting.RenderedPrompt` into a generation request
(structured output = the prompt's output schema), and ``call_from`` turns the generated text back
into a :class:`~schemas.FunctionCall` (aliases mapped back) checked against the offered tools.
"""

from __future__ import annotations

from dataclasses import dataclass

from odia_stream.evaluation import validate_call
from odia_stream.generation.json_stop import arguments_token_budget
from odia_stream.generation.protocol import AdapterRef, GenerationRequest, GenerationResult
from odia_stream.prompting import OutputParseError, RenderedPrompt, parse_output
from schemas import FunctionCall


@dataclass(frozen=True)
class CheckedCall:
    """The call read from a generation, or why there is none (``error`` is a short code + detail)."""

    call: FunctionCall | None
    error: str | None
    result: GenerationResult

    @property
    def ok(self) -> bool:
        """A well-formed call of an offered tool."""
        return self.call is not None and self.error is None


def request_for(prompt: RenderedPrompt, adapter: AdapterRef | None, max_new_tokens: int | None = None) -> GenerationRequest:
    """The generation request of ``prompt`` (constrained to its output schema where the backend can).

    ``max_new_tokens``: the caller's limit (serving and evaluation pass theirs; ``None`` leaves it
    to the backend's default). With the function given (formats 2 and 4) the limit is at most what the
    argument schema can need (:func:`~odia_stream.generation.json_stop.arguments_token_budget`).
    """
    if prompt.function is not None:
        budget = arguments_token_budget(prompt.output_schema, prompt.options.string_value_tokens)
        max_new_tokens = budget if max_new_tokens is None else min(budget, max_new_tokens)
    return GenerationRequest(
        messages=prompt.messages, json_schema=prompt.output_schema, adapter=adapter, max_new_tokens=max_new_tokens
    )


def call_from(result: GenerationResult, prompt: RenderedPrompt, *, check_required: bool = True) -> CheckedCall:
    """Parse and validate a generation: ``error`` starts with ``parse:``, ``invalid:`` or ``truncated:``."""
    try:
        call = parse_output(result.text, prompt)
    except OutputParseError as exc:
        reason = "truncated" if result.finish_reason == "length" else "parse"
        return CheckedCall(None, f"{reason}: {exc}", result)
    check = validate_call(call, prompt.tools, check_required=check_required)
    if not check.ok:
        return CheckedCall(call, "invalid: " + "; ".join(str(e) for e in check.errors), result)
    return CheckedCall(call, None, result)
