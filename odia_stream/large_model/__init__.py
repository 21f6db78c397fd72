"""The large model: an OpenAI-compatible chat-completions client, or a simulated replay of a dataset.

Usage (inside a coroutine, with settings and a ``ServeRequest``)::

    from odia_stream.large_model import build_large_model
    model = build_large_model(settings)
    answer = await model.call(serve_request)
"""

from odia_stream.large_model.factory import build_large_model
from odia_stream.large_model.openai_client import (
    OpenAIChatLargeModel,
    build_chat_request,
    messages_for,
    parse_chat_response,
)
from odia_stream.large_model.protocol import LargeModel, LargeModelAnswer, LargeModelError
from odia_stream.large_model.replay import ReplaySimulatedLargeModel, history_signature, lognormal_params

__all__ = [
    "LargeModel",
    "LargeModelAnswer",
    "LargeModelError",
    "OpenAIChatLargeModel",
    "ReplaySimulatedLargeModel",
    "build_chat_request",
    "build_large_model",
    "history_signature",
    "lognormal_params",
    "messages_for",
    "parse_chat_response",
]
