"""An untrained LoRA adapter with random, non-zero weights: for benchmarks and tests of the serving
path (loading, switching, hot swap), where what matters is that it visibly changes greedy outputs.
It has learned nothing; never promote one."""

from __future__ import annotations

from pathlib import Path

from odia_stream.generation.adapter_digest import adapter_sha256, version_of
from odia_stream.generation.base_model import base_model_id
from odia_stream.generation.protocol import AdapterRef

__all__ = ["random_lora_adapter"]


def random_lora_adapter(base_dir: Path, out: Path, *, seed: int, rank: int = 8, alpha: int = 64) -> AdapterRef:
    """Write a peft LoRA adapter (q/v projections) for the model in ``base_dir`` to ``out``, with
    weights drawn from ``seed``; returns it with its content sha256 and version."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, config)
    peft_model.peft_config["default"].base_model_name_or_path = base_model_id(base_dir)
    peft_model.save_pretrained(out, save_embedding_layers=False)
    sha = adapter_sha256(out)
    return AdapterRef(version=version_of(sha), path=out, sha256=sha, base_model=base_model_id(base_dir))
