"""A peft LoRA adapter written as a llama.cpp GGUF adapter file, for the llama.cpp backend.

llama.cpp applies a LoRA at run time from a GGUF file of ``general.type = adapter``: per adapted
weight two tensors ``<gguf weight name>.lora_a`` (rank × in) and ``.lora_b`` (out × rank), which
are peft's ``lora_A`` / ``lora_B`` matrices as they are, and ``adapter.lora.alpha``, from which
llama.cpp takes the scale ``alpha / rank`` exactly as peft does.

One detail is not a renaming: llama.cpp stores the query and key projections of a llama model
with their rows permuted (its rotary embedding pairs dimensions differently from transformers).
The transformers checkpoint the adapter was trained on has them un-permuted (transformers
undoes the permutation when it reads a GGUF), so the ``lora_b`` of ``q_proj`` and ``k_proj`` gets
the same row permutation as the base weight it adds to.

Only what changes the served function is accepted: LoRA on the decoder's linear layers. DoRA,
``modules_to_save`` (fully trained copies of layers) and adapters on the embeddings or the output
head raise :class:`LoraConversionError` with the reason, and the backend refuses the adapter.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from pathlib import Path

import numpy as np

__all__ = ["LoraConversionError", "LlamaShape", "convert_lora_to_gguf", "llama_shape"]

#: transformers module name → llama.cpp tensor name inside ``blk.<n>.``.
_MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_NAME = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")


class LoraConversionError(ValueError):
    """The adapter cannot be written as a llama.cpp adapter (the message says why)."""


class LlamaShape:
    """What the conversion needs to know of the base model: its architecture and head counts."""

    def __init__(self, architecture: str, n_head: int, n_head_kv: int) -> None:
        if architecture != "llama":
            raise LoraConversionError(
                f"the base GGUF's architecture is {architecture!r}; adapters are converted for 'llama' models only"
            )
        if n_head < 1 or n_head_kv < 1:
            raise LoraConversionError(f"head counts must be positive, got {n_head} and {n_head_kv}")
        self.architecture, self.n_head, self.n_head_kv = architecture, n_head, n_head_kv


def llama_shape(base_gguf: Path) -> LlamaShape:
    """Architecture and attention head counts read from a base model's GGUF metadata."""
    from gguf import GGUFReader

    reader = GGUFReader(str(base_gguf))

    def value(key: str) -> object:
        field = reader.get_field(key)
        if field is None:
            raise LoraConversionError(f"{base_gguf.name} has no {key!r} metadata")
        return field.contents()

    arch = str(value("general.architecture"))
    n_head = int(value(f"{arch}.attention.head_count"))  # type: ignore[call-overload]
    kv_field = reader.get_field(f"{arch}.attention.head_count_kv")
    n_head_kv = int(kv_field.contents()) if kv_field is not None else n_head
    return LlamaShape(arch, n_head, n_head_kv)


def _permute_rows(b: np.ndarray, n_head: int) -> np.ndarray:
    """The row order llama.cpp gives a query/key projection, applied to a LoRA ``B`` (out × rank)."""
    out = b.shape[0]
    if out % (2 * n_head):
        raise LoraConversionError(f"a projection of {out} rows cannot be split into {n_head} rotary heads")
    return b.reshape(n_head, 2, out // n_head // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def _read_config(adapter_dir: Path) -> tuple[float, int]:
    """``(alpha as llama.cpp must see it, rank)`` from ``adapter_config.json``; unsupported options raise."""
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise LoraConversionError(f"{adapter_dir}: cannot read adapter_config.json: {exc}") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise LoraConversionError(f"{adapter_dir}: peft type {config.get('peft_type')!r} is not LoRA")
    if config.get("use_dora"):
        raise LoraConversionError(f"{adapter_dir}: DoRA adapters cannot be applied by llama.cpp")
    if config.get("modules_to_save"):
        raise LoraConversionError(
            f"{adapter_dir}: modules_to_save ({config['modules_to_save']}) are full layers, not LoRA"
        )
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise LoraConversionError(f"{adapter_dir}: per-module ranks or alphas are not supported")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    # llama.cpp scales by alpha / rank; rsLoRA scales by alpha / sqrt(rank).
    if config.get("use_rslora"):
        alpha *= math.sqrt(rank)
    return alpha, rank


def convert_lora_to_gguf(adapter_dir: Path, out_file: Path, shape: LlamaShape) -> Path:
    """Write the peft adapter in ``adapter_dir`` as a llama.cpp adapter at ``out_file`` (atomically).

    Raises :class:`LoraConversionError` when the adapter holds anything but LoRA on the decoder's
    linear layers, or its matrices do not pair up.
    """
    import gguf
    from safetensors.numpy import load_file

    adapter_dir, out_file = Path(adapter_dir), Path(out_file)
    alpha, rank = _read_config(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise LoraConversionError(f"{adapter_dir}: no adapter_model.safetensors")
    tensors = load_file(str(weights))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, array in tensors.items():
        match = _NAME.match(name)
        if match is None or match.group(2) not in _MODULES:
            raise LoraConversionError(f"{adapter_dir}: tensor {name!r} is not LoRA on a decoder linear layer")
        layer, module, side = match.groups()
        target = f"blk.{layer}.{_MODULES[module]}.weight"
        matrix = np.ascontiguousarray(array.astype(np.float32))
        if side == "B" and module in ("self_attn.q_proj", "self_attn.k_proj"):
            heads = shape.n_head if module == "self_attn.q_proj" else shape.n_head_kv
            matrix = np.ascontiguousarray(_permute_rows(matrix, heads))
        pairs.setdefault(target, {})[side] = matrix
    if not pairs:
        raise LoraConversionError(f"{adapter_dir}: the adapter holds no LoRA tensors")
    for target, pair in pairs.items():
        if set(pair) != {"A", "B"}:
            raise LoraConversionError(f"{adapter_dir}: {target} has lora_{''.join(pair)} only")
        if pair["A"].shape[0] != rank or pair["B"].shape[1] != rank:
            raise LoraConversionError(
                f"{adapter_dir}: {target} has A {pair['A'].shape} and B {pair['B'].shape}, rank {rank}"
            )
    out_file.parent.mkdir(parents=True, exist_ok=True)
    staged = out_file.with_name(f".{out_file.name}.{uuid.uuid4().hex[:8]}.tmp")
    writer = gguf.GGUFWriter(str(staged), arch=shape.architecture)
    try:
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", alpha)
        for target in sorted(pairs):
            writer.add_tensor(f"{target}.lora_a", pairs[target]["A"])
            writer.add_tensor(f"{target}.lora_b", pairs[target]["B"])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(staged, out_file)
    finally:
        staged.unlink(missing_ok=True)
    return out_file
