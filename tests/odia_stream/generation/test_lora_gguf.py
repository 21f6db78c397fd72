"""peft LoRA → llama.cpp adapter: the converted adapter changes llama.cpp's logits as peft changes
transformers' (real SmolLM2, a random LoRA on every linear layer, query and key included)."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np
import pytest

from odia_stream.generation import lora_gguf
from odia_stream.generation.base_model import smollm2_gguf_path
from odia_stream.generation.lora_gguf import LoraConversionError, convert_lora_to_gguf, llama_shape

PROMPT = [{"role": "system", "content": "Call this function:\nplay(song*,artist)"}, {"role": "user", "content": "play yesterday"}]


@pytest.fixture(scope="module")
def random_all_linear(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int], np.ndarray, np.ndarray]:
    """A LoRA with large random B on all linear layers, the prompt's token ids, and transformers'
    last-position logits without and with it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    model = AutoModelForCausalLM.from_pretrained(str(smollm2_dir), dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    out = tmp_path_factory.mktemp("lora") / "adapter"
    peft_model.save_pretrained(out)
    ids = tok(tok.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        with_lora = peft_model(torch.tensor([ids])).logits[0, -1].numpy()
        with peft_model.disable_adapter():
            base = peft_model(torch.tensor([ids])).logits[0, -1].numpy()
    return out, ids, base, with_lora


def _llama_logits(ids: list[int], adapter: Path | None) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(str(smollm2_gguf_path()), n_ctx=256, n_threads=2, logits_all=True, verbose=False)
    try:
        if adapter is not None:
            handle = llama_cpp.llama_adapter_lora_init(llm._model.model, str(adapter).encode())
            assert handle, "llama.cpp refused the converted adapter"
            handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
            assert llama_cpp.llama_set_adapters_lora(llm._ctx.ctx, handles, 1, (ctypes.c_float * 1)(1.0)) == 0
        llm.eval(ids)
        return np.array(llm.scores[len(ids) - 1])
    finally:
        llm.close()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_converted_adapter_matches_peft(
    random_all_linear: tuple[Path, list[int], np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, ids, base, with_lora = random_all_linear
    shape = llama_shape(smollm2_gguf_path())
    assert (shape.architecture, shape.n_head, shape.n_head_kv) == ("llama", 9, 3)
    gguf = convert_lora_to_gguf(folder, tmp_path / "a.gguf", shape)
    served = _llama_logits(ids, gguf)
    assert _corr(base, with_lora) < 0.9  # the adapter changes the model a lot...
    assert _corr(served, with_lora) > 0.99  # ...and llama.cpp applies exactly that change (4-bit base aside)
    assert served.argmax() == with_lora.argmax()
    # Without the query/key row permutation the adapter would be applied wrongly: the test can tell.
    monkeypatch.setattr(lora_gguf, "_permute_rows", lambda b, n_head: b)
    wrong = _llama_logits(ids, convert_lora_to_gguf(folder, tmp_path / "wrong.gguf", shape))
    assert _corr(wrong, with_lora) < _corr(served, with_lora) - 0.05


def _copy_with_config(src: Path, dst: Path, **changes: object) -> Path:
    dst.mkdir()
    (dst / "adapter_model.safetensors").write_bytes((src / "adapter_model.safetensors").read_bytes())
    config = json.loads((src / "adapter_config.json").read_text())
    config.update(changes)
    (dst / "adapter_config.json").write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"peft_type": "IA3"}, "not LoRA"),
        ({"rank_pattern": {"q_proj": 2}}, "per-module"),
    ],
)
def test_what_llamacpp_cannot_apply_is_refused(
    random_all_linear: tuple[Path, list[int], np.ndarray, np.ndarray], tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    folder = _copy_with_config(random_all_linear[0], tmp_path / "changed", **changes)
    with pytest.raises(LoraConversionError, match=message):
        convert_lora_to_gguf(folder, tmp_path / "out.gguf", llama_shape(smollm2_gguf_path()))
    assert not (tmp_path / "out.gguf").exists()


def test_tensors_outside_the_decoder_and_unpaired_matrices_are_refused(
    random_all_linear: tuple[Path, list[int], np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(random_all_linear[0] / "adapter_model.safetensors"))
    shape = llama_shape(smollm2_gguf_path())
    for case, edit in {
        "embeddings": lambda t: {**t, "base_model.model.model.embed_tokens.lora_A.weight": np.zeros((4, 8), np.float32)},
        "unpaired": lambda t: {k: v for k, v in t.items() if not k.endswith("layers.0.self_attn.q_proj.lora_B.weight")},
    }.items():
        folder = _copy_with_config(random_all_linear[0], tmp_path / case)
        save_file(edit(tensors), str(folder / "adapter_model.safetensors"))
        with pytest.raises(LoraConversionError, match="not LoRA on a decoder|has lora_A only"):
            convert_lora_to_gguf(folder, tmp_path / f"{case}.gguf", shape)


def test_rslora_scale_is_carried_in_alpha(random_all_linear: tuple[Path, list[int], np.ndarray, np.ndarray], tmp_path: Path) -> None:
    from gguf import GGUFReader

    shape = llama_shape(smollm2_gguf_path())
    plain = convert_lora_to_gguf(random_all_linear[0], tmp_path / "plain.gguf", shape)
    rs = convert_lora_to_gguf(_copy_with_config(random_all_linear[0], tmp_path / "rs", use_rslora=True), tmp_path / "rs.gguf", shape)
    alpha = {p.name: GGUFReader(str(p)).get_field("adapter.lora.alpha").contents() for p in (plain, rs)}  # type: ignore[union-attr]
    assert alpha["plain.gguf"] == pytest.approx(8.0) and alpha["rs.gguf"] == pytest.approx(8.0 * 2.0)  # alpha·√r, r = 4
