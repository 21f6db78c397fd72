"""The transformers + peft small-generator backend (the fallback when vLLM is not installed).

Batched greedy generation on CPU (or a GPU when one is there). LoRA adapters are loaded as named
peft adapters on the one base model (``model.load_adapter(path, adapter_name=version)``); a
request group switches to its adapter with ``set_adapter``, requests without an adapter run with
adapters disabled. A version is one adapter name for one content: it is never reloaded with other
weights. ``json_schema`` is **not enforced** by this backend (``enforces_json_schema = False``):
callers validate the output against the tool schema, as they do for every backend. A row stops
as soon as its JSON object closes (:func:`~odia_stream.generation.json_stop.json_object_end`), not
only at the end-of-turn token, so a model that goes on writing after the call costs nothing.

Every model call runs on one worker thread (:mod:`~odia_stream.generation.worker_thread`), so the
async methods never block the event loop and adapter switches never interleave with a generation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from odia_stream.generation.adapter_check import verify_adapter
from odia_stream.generation.base_model import base_model_id, ensure_base_model, load_causal_lm, resolve_device
from odia_stream.generation.json_stop import json_object_end
from odia_stream.generation.protocol import (
    AdapterNotLoaded,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
)
from odia_stream.generation.worker_thread import WorkerThreadGenerator

if TYPE_CHECKING:
    from odia_stream.settings import OdiaSettings

__all__ = ["HFGenerator"]


class _ObjectClosed(StoppingCriteria):
    """Stops each row once the text it generated (after its assistant prefix) holds a complete
    JSON object."""

    def __init__(self, decode: Callable[[list[int]], str], prefixes: Sequence[str], prompt_width: int) -> None:
        self.decode, self.prefixes, self.prompt_width = decode, list(prefixes), prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: object, **kwargs: object) -> torch.BoolTensor:
        done = [
            json_object_end(prefix + self.decode(row[self.prompt_width :].tolist())) is not None
            for prefix, row in zip(self.prefixes, input_ids, strict=True)
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]

log = logging.getLogger(__name__)
_WARMUP_MESSAGES = ({"role": "user", "content": "hi"},)


class HFGenerator(WorkerThreadGenerator[str]):
    """:class:`~odia_stream.generation.protocol.SmallGenerator` on transformers + peft."""

    enforces_json_schema = False

    def __init__(
        self,
        model_dir: Path,
        *,
        base_model: str | None = None,
        dtype: str = "float32",
        device: str = "auto",
        max_new_tokens: int = 96,
        max_batch_size: int = 8,
        torch_threads: int | None = None,
    ) -> None:
        """Load the base model from ``model_dir`` (blocking; a few seconds for SmolLM2-135M).

        ``base_model``: the identity adapters must have been trained on (default:
        :func:`~odia_stream.generation.base_model.base_model_id` of ``model_dir``).
        """
        if max_new_tokens < 1 or max_batch_size < 1:
            raise ValueError("max_new_tokens and max_batch_size must be >= 1")
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self.base_model = base_model or base_model_id(Path(model_dir))
        self.device = resolve_device(device)
        self.max_new_tokens = max_new_tokens
        self.max_batch_size = max_batch_size
        self._model, self._tokenizer = load_causal_lm(Path(model_dir), dtype=dtype, device=self.device)
        super().__init__("hf-generator")  # keeps version -> sha256 of the loaded adapters

    @classmethod
    def from_settings(cls, settings: OdiaSettings) -> HFGenerator:
        """The generator the ``generator`` settings describe (converts the packaged base model once)."""
        g = settings.generator
        return cls(
            ensure_base_model(settings),
            dtype=g.dtype,
            device=g.device,
            max_new_tokens=g.max_new_tokens,
            max_batch_size=g.max_batch_size,
            torch_threads=g.torch_threads,
        )

    # -- adapters ----------------------------------------------------------------------------

    def _sha256_of(self, kept: str) -> str:
        return kept

    def _load_blocking(self, ref: AdapterRef) -> None:
        if self._already_loaded(ref):
            return
        verify_adapter(ref, (self.base_model,))
        path = Path(ref.path)
        started = time.perf_counter()
        # With another adapter loaded, transformers' load report lists that adapter's weights as
        # "MISSING ... newly initialized": they are not in this checkpoint, but they are left as
        # they were (checked parameter by parameter; the two-adapter test covers it).
        self._model.load_adapter(str(path), adapter_name=ref.version)
        self._loaded[ref.version] = ref.sha256
        try:
            self._generate_group([GenerationRequest(messages=_WARMUP_MESSAGES)], ref.version, 2)
        except Exception:
            self._loaded.pop(ref.version, None)
            self._model.delete_adapter(ref.version)
            raise
        log.info("loaded adapter %s from %s in %.0f ms", ref.version, path, (time.perf_counter() - started) * 1000)

    def _free_blocking(self, version: str) -> None:
        self._model.delete_adapter(version)
        del self._loaded[version]

    # -- generation --------------------------------------------------------------------------

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate every request greedily; requests sharing an adapter and token limit are batched."""
        return await self._run(lambda: self._generate_blocking(requests))

    def _generate_blocking(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        for r in requests:
            if r.adapter is not None and self._loaded.get(r.adapter.version) != r.adapter.sha256:
                raise AdapterNotLoaded(f"adapter {r.adapter.version} is not loaded (load_adapter first)")
        # One batch per adapter: requests with different token budgets share it (each row stops when
        # its object closes), under the largest budget of the batch.
        groups: dict[str | None, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.adapter.version if r.adapter is not None else None, []).append(i)
        results: list[GenerationResult | None] = [None] * len(requests)
        for version, indices in groups.items():
            for start in range(0, len(indices), self.max_batch_size):
                chunk = indices[start : start + self.max_batch_size]
                max_new = max(requests[i].max_new_tokens or self.max_new_tokens for i in chunk)
                for i, res in zip(chunk, self._generate_group([requests[i] for i in chunk], version, max_new)):
                    results[i] = res
        return [r for r in results if r is not None]

    def _prompt(self, request: GenerationRequest) -> str:
        text = self._tokenizer.apply_chat_template(
            [dict(m) for m in request.messages], add_generation_prompt=True, tokenize=False
        )
        return str(text) + request.assistant_prefix

    def _generate_group(
        self, requests: Sequence[GenerationRequest], version: str | None, max_new_tokens: int
    ) -> list[GenerationResult]:
        tok = self._tokenizer
        started = time.perf_counter()
        enc = tok([self._prompt(r) for r in requests], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        if version is None:
            if self._loaded:
                self._model.disable_adapters()
        else:
            self._model.enable_adapters()
            self._model.set_adapter(version)
        prompt_width = enc["input_ids"].shape[1]
        closed = _ObjectClosed(
            lambda ids: tok.decode(ids, skip_special_tokens=True), [r.assistant_prefix for r in requests], prompt_width
        )
        try:
            with torch.inference_mode():
                out = self._model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                    stopping_criteria=StoppingCriteriaList([closed]),
                )
        finally:
            if version is None and self._loaded:
                self._model.enable_adapters()
        ms = (time.perf_counter() - started) * 1000
        results = []
        for row, request in enumerate(requests):
            new = out[row, prompt_width:].tolist()
            finish: Literal["stop", "length"] = "length"
            if tok.eos_token_id in new:
                new = new[: new.index(tok.eos_token_id) + 1]
                finish = "stop"
                text_ids = new[:-1]
            else:
                if tok.pad_token_id is not None and tok.pad_token_id in new:  # padded after it stopped
                    new = new[: new.index(tok.pad_token_id)]
                text_ids = new
            text = request.assistant_prefix + tok.decode(text_ids, skip_special_tokens=True)
            end = json_object_end(text)
            if end is not None:  # the object closed: what follows it is not part of the answer
                text, finish = text[:end], "stop"
            results.append(
                GenerationResult(
                    text=text,
                    adapter_version=version,
                    prompt_tokens=int(enc["attention_mask"][row].sum()),
                    output_tokens=len(new),
                    ms=ms,
                    finish_reason=finish,
                )
            )
        return results

    async def aclose(self) -> None:
        """Stop the worker thread and drop the model."""
        self._executor.shutdown(wait=True)
        self._loaded.clear()
        del self._model
