"""Token counts of prompts and outputs, and what each format option saves.

Counts use the small model's own tokenizer: a prompt is counted through its chat template with
the generation prompt appended (what the model reads); an output is the target text plus the
one end-of-turn token the model must also generate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from statistics import mean
from typing import Any, Protocol

from tqdm import tqdm

from odia_stream.prompting.aliases import ArgumentAliases
from odia_stream.prompting.format import (
    PromptOptions,
    PromptRecord,
    render_call_text,
    render_prompt,
    render_target,
)

#: The boolean token-saving options, in report order (``function_given``: the record's own function
#: is given, as the router gives it in serving).
SAVING_OPTIONS = ("function_given", "compact_schemas", "alias_arguments", "no_output_prefix")
#: ``{"name":"``: the constant opening of a name/arguments call (measured as a prefill alternative).
NAME_PREFIX = '{"name":"'


class Tokenizer(Protocol):
    """The part of a ``transformers`` tokenizer used here."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def count_tokens(content: str | Sequence[Mapping[str, str]], tokenizer: Tokenizer) -> int:
    """Tokens of a text (no special tokens added), or of chat messages through the tokenizer's chat
    template with the generation prompt (raises ``ValueError`` when the tokenizer has none)."""
    if isinstance(content, str):
        return len(tokenizer.encode(content, add_special_tokens=False))
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; count an instruct model's tokenizer")
    rendered = tokenizer.apply_chat_template(list(content), tokenize=False, add_generation_prompt=True)
    return len(tokenizer.encode(rendered, add_special_tokens=False))


def output_tokens(text: str, tokenizer: Tokenizer) -> int:
    """Tokens the model generates for ``text``: the text plus its end-of-turn token."""
    return count_tokens(text, tokenizer) + 1


def option_variants(base: PromptOptions | None = None) -> dict[str, PromptOptions]:
    """``default`` (``base`` itself), ``all_on``, ``all_off`` and ``without_<option>`` per saving
    option (other fields from ``base``)."""
    base = base or PromptOptions()
    on = {name: True for name in SAVING_OPTIONS}
    variants = {
        "default": base,
        "all_on": base.model_copy(update=on),
        "all_off": base.model_copy(update={name: False for name in SAVING_OPTIONS}),
    }
    for name in SAVING_OPTIONS:
        variants[f"without_{name}"] = base.model_copy(update={**on, name: False})
    return variants


def token_report(
    records: Iterable[PromptRecord],
    tokenizer: Tokenizer,
    *,
    base: PromptOptions | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Mean tokens per prompt and per output for every variant of :func:`option_variants`.

    Records without a call are skipped (counted under ``skipped_no_call``). ``output_alternatives``
    compares, with aliases on, the chosen keyed output with ``{"name":...,"arguments":...}``
    written in full and with its ``{"name":"`` opening moved into the prompt (prefilled).
    Ratios are against ``all_off`` (the usual function-calling format), measured in this run.
    """
    variants = option_variants(base)
    prompt_counts: dict[str, list[int]] = {name: [] for name in variants}
    output_counts: dict[str, list[int]] = {name: [] for name in variants}
    alternatives: dict[str, list[int]] = {"keyed": [], "name_arguments": [], "name_arguments_prefilled": []}
    skipped = 0
    items = list(records)
    for record in tqdm(items, desc="token report", unit="rec", disable=not progress):
        if record.call is None:
            skipped += 1
            continue
        for name, options in variants.items():
            prompt = render_prompt(record.tools, record.history, record.query, options, record.call.name)
            prompt_counts[name].append(count_tokens(prompt.messages, tokenizer))
            output_counts[name].append(output_tokens(render_target(record.call, prompt), tokenizer))
        aliases = ArgumentAliases.for_tools(record.tools)
        full = render_call_text(record.call, aliases, "name_arguments")
        alternatives["keyed"].append(
            output_tokens(render_call_text(record.call, aliases, "keyed"), tokenizer)
        )
        alternatives["name_arguments"].append(output_tokens(full, tokenizer))
        alternatives["name_arguments_prefilled"].append(output_tokens(full[len(NAME_PREFIX) :], tokenizer))
    measured = len(items) - skipped
    if measured == 0:
        raise ValueError("no record with a call to measure")
    base_prompt = mean(prompt_counts["all_off"])
    base_output = mean(output_counts["all_off"])
    report_variants: dict[str, Any] = {}
    for name, options in variants.items():
        p, o = mean(prompt_counts[name]), mean(output_counts[name])
        report_variants[name] = {
            "options": {k: getattr(options, k) for k in SAVING_OPTIONS},
            "prompt_tokens_mean": round(p, 2),
            "output_tokens_mean": round(o, 2),
            "prompt_tokens_max": max(prompt_counts[name]),
            "output_tokens_max": max(output_counts[name]),
            "prompt_ratio_vs_all_off": round(p / base_prompt, 4),
            "output_ratio_vs_all_off": round(o / base_output, 4),
        }
    return {
        "records": measured,
        "skipped_no_call": skipped,
        "max_history_turns": variants["all_on"].max_history_turns,
        "tokenizer": str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__)),
        "variants": report_variants,
        "output_alternatives": {k: round(mean(v), 2) for k, v in alternatives.items()},
    }
