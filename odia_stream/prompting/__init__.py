"""The small generator's prompt and output format (one module for trainer and serving), argument
aliases, compact tool schemas, and token counts of each token-saving option."""

from odia_stream.prompting.aliases import ArgumentAliases, UnknownArgumentError, alias_names
from odia_stream.prompting.format import (
    PROMPT_FORMAT_VERSION,
    CallStyle,
    OutputParseError,
    PromptOptions,
    PromptRecord,
    RenderedPrompt,
    call_style,
    parse_output,
    prompt_format_version,
    recent_turns,
    render_call_text,
    render_prompt,
    render_record,
    render_target,
)
from odia_stream.prompting.tokens import (
    SAVING_OPTIONS,
    count_tokens,
    option_variants,
    output_tokens,
    token_report,
)

__all__ = [
    "PROMPT_FORMAT_VERSION",
    "SAVING_OPTIONS",
    "ArgumentAliases",
    "CallStyle",
    "OutputParseError",
    "PromptOptions",
    "PromptRecord",
    "RenderedPrompt",
    "UnknownArgumentError",
    "alias_names",
    "call_style",
    "count_tokens",
    "option_variants",
    "output_tokens",
    "parse_output",
    "prompt_format_version",
    "recent_turns",
    "render_call_text",
    "render_prompt",
    "render_record",
    "render_target",
    "token_report",
]
