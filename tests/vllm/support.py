"""What the vLLM tests share besides fixtures (conftest modules are not importable from tests)."""

from __future__ import annotations

from collections.abc import Callable

from odia_stream.generation.protocol import AdapterRef

#: The ``make_adapter`` fixture: ``make_adapter(seed)`` is a real LoRA adapter on the packaged base model.
MakeAdapter = Callable[[int], AdapterRef]
