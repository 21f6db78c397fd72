"""The interface every small-generator backend implements (transformers, vLLM, an HTTP server).

A backend holds one base model and any number of LoRA adapters, each loaded under its version
(a version is never reloaded with other content). Requests name the adapter they want, or none
for the bare base model. Results are returned in request order.

Contract for every backend:

- ``GenerationResult.text`` is the whole assistant turn: it **begins with**
  ``GenerationRequest.assistant_prefix`` (the forced start, e.g. ``{"name": "``), followed by
  what the model generated, without the end-of-turn token.
- Decoding is greedy (deterministic for a given model, adapter and prompt).
- ``json_schema`` is a structured-output constraint. A backend either enforces it (vLLM's
  guided decoding) or ignores it and says so in :attr:`SmallGenerator.enforces_json_schema`;
  callers validate the output against the tool schema either way.
- ``load_adapter`` verifies the adapter's sha256 before loading (:class:`AdapterIntegrityError`)
  and warms it up, so the first request after a hot swap is not slow. Loading a version that is
  already loaded is a no-op when its sha256 matches, and an error otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "AdapterBaseMismatch",
    "AdapterError",
    "AdapterIntegrityError",
    "AdapterNotLoaded",
    "AdapterRef",
    "GenerationRequest",
    "GenerationResult",
    "SmallGenerator",
]


class AdapterError(RuntimeError):
    """An adapter cannot be loaded or used."""


class AdapterIntegrityError(AdapterError):
    """An adapter's files do not hash to the sha256 it was published with."""


class AdapterBaseMismatch(AdapterError):
    """An adapter was trained on another base model than the generator holds."""


class AdapterNotLoaded(AdapterError):
    """A request names an adapter version that is not loaded."""


@dataclass(frozen=True)
class AdapterRef:
    """A LoRA adapter as published: content-derived ``version``, folder, sha256, and its base model."""

    version: str
    path: Path
    sha256: str
    base_model: str

    def __post_init__(self) -> None:
        if not self.version:
            raise ValueError("adapter version must not be empty")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"adapter sha256 must be 64 lowercase hex digits, got {self.sha256!r}")


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion to generate.

    ``messages``: OpenAI-style chat messages (``role``/``content``) up to the user's turn;
    ``json_schema``: structured-output constraint (see the module docstring);
    ``adapter``: the LoRA to use, ``None`` = base model; ``max_new_tokens``: ``None`` = the
    backend's setting; ``assistant_prefix``: text forced at the start of the assistant turn.
    """

    messages: Sequence[Mapping[str, str]]
    json_schema: Mapping[str, Any] | None = None
    adapter: AdapterRef | None = None
    max_new_tokens: int | None = None
    assistant_prefix: str = ""

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a generation request needs at least one message")
        for m in self.messages:
            if "role" not in m or "content" not in m:
                raise ValueError(f"each message needs 'role' and 'content', got keys {sorted(m)}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")


@dataclass(frozen=True)
class GenerationResult:
    """The generated assistant turn (starting with the request's ``assistant_prefix``) and its cost.

    ``adapter_version``: the adapter that produced it (``None`` = base model); ``ms``: wall time of
    the batch that produced it; ``finish_reason``: ``stop`` (end of turn) or ``length``.
    """

    text: str
    adapter_version: str | None
    prompt_tokens: int
    output_tokens: int
    ms: float
    finish_reason: Literal["stop", "length"] = "stop"
    #: Backend-specific details (request id, backend name); never needed to use the result.
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class SmallGenerator(Protocol):
    """A small-model backend: batched greedy generation with hot-swappable LoRA adapters."""

    #: The base model it serves (a ``generator.base_model`` value, or a folder / hub id).
    base_model: str
    #: Whether ``GenerationRequest.json_schema`` is enforced while decoding.
    enforces_json_schema: bool

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate every request (batched where possible); results in request order."""
        ...

    async def load_adapter(self, ref: AdapterRef) -> None:
        """Verify ``ref``'s sha256, load it under ``ref.version`` and warm it up."""
        ...

    async def unload_adapter(self, version: str) -> None:
        """Free a loaded adapter (:class:`AdapterNotLoaded` when it is not loaded)."""
        ...

    def loaded_versions(self) -> list[str]:
        """Versions of the loaded adapters, in load order."""
        ...

    async def aclose(self) -> None:
        """Release the model and its threads."""
        ...
