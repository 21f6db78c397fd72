"""When a small-model answer is not served: the escalation rules.

A small-model answer is escalated to the large model when

* it did not come within the latency budget (``timeout``);
* generating failed (``generation_error``) or the prompt could not be rendered (``prompt_error``);
* the output is not a call in the prompt's format (``parse_error``, or ``truncated`` when the token
  limit cut it off);
* the call does not fit the offered tool's schema: unknown function, missing required argument,
  wrong type or enum, unknown argument (``invalid_call``; argument aliases are mapped back first);
* it calls another function than the one the router expected for the request's cluster
  (``function_mismatch``): the router's precision rests on that function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from odia_stream.generation.calls import CheckedCall

__all__ = ["ESCALATION_REASONS", "Escalation", "EscalationReason", "escalation_for"]

EscalationReason = Literal[
    "timeout",
    "generation_error",
    "prompt_error",
    "parse_error",
    "truncated",
    "invalid_call",
    "function_mismatch",
]
#: Every escalation reason (metric label values).
ESCALATION_REASONS: tuple[str, ...] = get_args(EscalationReason)

_ERROR_PREFIX: dict[str, EscalationReason] = {
    "parse": "parse_error",
    "truncated": "truncated",
    "invalid": "invalid_call",
}


@dataclass(frozen=True)
class Escalation:
    """Why a small-model answer goes to the large model, with a human-readable detail."""

    reason: EscalationReason
    detail: str

    @property
    def route_reason(self) -> str:
        """The response's ``route_reason``: ``escalated:<reason>``."""
        return f"escalated:{self.reason}"


def escalation_for(checked: CheckedCall, expected_function: str | None) -> Escalation | None:
    """The escalation a checked generation calls for, or ``None`` when it may be served.

    ``checked`` comes from :func:`~odia_stream.generation.calls.call_from` (parsed, un-aliased and
    validated against the offered tools); ``expected_function`` is the router's prediction.
    """
    if checked.error is not None:
        prefix = checked.error.split(":", 1)[0].strip()
        return Escalation(_ERROR_PREFIX.get(prefix, "invalid_call"), checked.error)
    if checked.call is None:
        return Escalation("parse_error", "no call in the output")
    if expected_function is not None and checked.call.name != expected_function:
        return Escalation(
            "function_mismatch",
            f"the small model called {checked.call.name!r}, the router expected {expected_function!r}",
        )
    return None
