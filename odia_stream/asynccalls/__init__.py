"""Asynchronous function calling (AsyncLM): calls taken out of a generation while it streams."""

from odia_stream.asynccalls.stream_parser import (
    CallTextStream,
    StreamedCall,
    StreamProblem,
    ToolCallDeltas,
    call_from_object,
    early_dispatchable,
)

__all__ = [
    "CallTextStream",
    "StreamProblem",
    "StreamedCall",
    "ToolCallDeltas",
    "call_from_object",
    "early_dispatchable",
]
