"""LoRA fine-tuning of the real packaged SmolLM2-135M on SNIPS calls (a few CPU steps)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.adapters.registry import AdapterRegistry
from odia_stream.generation.base_model import PACKAGED_SMOLLM2, resolve_base_model
from odia_stream.settings import TrainerSettings
from odia_stream.training.lora import IGNORE_INDEX, TrainingExample, encode_example, train_lora
from schemas import FCLogEvent

#: Trains LoRA adapters on the real small model.
pytestmark = pytest.mark.slow

SYSTEM = "Answer with one function call as JSON."
# One intra-op thread: on a shared 2-core machine more threads than free cores are many times slower.
FAST = {"torch_threads": 1, "learning_rate": 1e-3, "max_seq_len": 128}


@pytest.fixture(scope="module")
def smollm2_dir(model_cache: Path) -> Path:
    return resolve_base_model(PACKAGED_SMOLLM2, model_cache)


@pytest.fixture(scope="module")
def examples(snips_events: list[FCLogEvent]) -> list[TrainingExample]:
    """One SNIPS example per intent plus one more: prompt = system + query, completion = the call as JSON."""
    picked: dict[str, FCLogEvent] = {}
    for e in snips_events:
        if e.call is not None:
            picked.setdefault(e.call.name, e)
    events = list(picked.values())[:8]
    return [
        TrainingExample(
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": e.query}],
            completion=json.dumps(e.call.arguments, ensure_ascii=False) + "}",
            assistant_prefix=json.dumps({"name": e.call.name}, ensure_ascii=False)[:-1] + ', "arguments": ',
        )
        for e in events
        if e.call is not None
    ]


def test_prompt_is_masked_and_only_the_completion_is_learned(smollm2_dir: Path, examples: list[TrainingExample]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2_dir))
    ex = examples[0]
    enc = encode_example(ex, tok, max_seq_len=512)
    learned = [t for t in enc.labels if t != IGNORE_INDEX]
    assert learned == tok(ex.completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert enc.labels[: len(enc.labels) - len(learned)] == [IGNORE_INDEX] * (len(enc.labels) - len(learned))
    prompt = tok.decode(enc.input_ids[: len(enc.input_ids) - len(learned)])
    assert prompt.endswith("<|im_start|>assistant\n" + ex.assistant_prefix) and ex.messages[1]["content"] in prompt
    # Too long: the prompt is cut from the left, the completion is kept whole.
    short = encode_example(ex, tok, max_seq_len=len(learned) + 5)
    assert len(short.input_ids) == len(learned) + 5 and short.input_ids[-len(learned) :] == enc.input_ids[-len(learned) :]
    with pytest.raises(ValueError, match="does not fit"):
        encode_example(ex, tok, max_seq_len=len(learned))


def test_a_few_steps_lower_the_loss_and_write_the_adapter_atomically(
    smollm2_dir: Path, examples: list[TrainingExample], tmp_path: Path
) -> None:
    out = tmp_path / "runs" / "adapter"
    settings = TrainerSettings(max_steps=3, batch_size=4, lora_r=8, **FAST)
    seen_incomplete: list[list[str]] = []
    done = threading.Event()

    def watch() -> None:  # whenever the adapter folder is visible, it must be complete
        while not done.is_set():
            if out.exists():
                names = sorted(p.name for p in out.iterdir())
                if names != ["adapter_config.json", "adapter_model.safetensors"]:
                    seen_incomplete.append(names)
            done.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = train_lora(smollm2_dir, examples, settings, out, progress=False)
    finally:
        done.set()
        watcher.join()
    print(
        f"LoRA r=8 all-linear, batch 4, {result.completion_tokens} completion tokens: "
        f"{result.seconds_per_step:.2f} s/step, peak RSS {result.peak_rss_mb:.0f} MB, losses {result.losses}"
    )
    assert seen_incomplete == []
    assert result.steps == 3 and result.stop_reason == "max_steps" and result.examples == len(examples)
    assert all(math.isfinite(x) for x in result.losses) and result.losses[-1] < result.losses[0]
    assert result.base_model == "smollm2-135m-instruct-0.1.2" and result.trainable_params > 0
    assert result.seconds_per_step > 0 and result.peak_rss_mb > 100
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["adapter"]  # no temporary folders left
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["base_model_name_or_path"] == "smollm2-135m-instruct-0.1.2"
    assert config["target_modules"] == sorted(config["target_modules"]) and "q_proj" in config["target_modules"]
    # LoRA's B matrices start at zero: non-zero B after training means the adapter changes outputs.
    weights = load_file(out / "adapter_model.safetensors")
    b_norms = [w.abs().sum().item() for name, w in weights.items() if "lora_B" in name]
    assert b_norms and all(n > 0 for n in b_norms)

    # The adapter registers under its content version.
    entry = AdapterRegistry(tmp_path / "registry").register(out, base_model=result.base_model, eval_metrics={})
    assert entry.sha256 == adapter_sha256(out)

    with pytest.raises(FileExistsError):
        train_lora(smollm2_dir, examples, settings, out, progress=False)


def test_training_is_deterministic_for_a_seed(smollm2_dir: Path, examples: list[TrainingExample], tmp_path: Path) -> None:
    settings = TrainerSettings(max_steps=2, batch_size=2, seed=3, **FAST)
    first = train_lora(smollm2_dir, examples[:4], settings, tmp_path / "one", progress=False)
    second = train_lora(smollm2_dir, examples[:4], settings, tmp_path / "two", progress=False)
    assert first.losses == second.losses
    assert adapter_sha256(tmp_path / "one") == adapter_sha256(tmp_path / "two")
    train_lora(
        smollm2_dir, examples[:4], settings.model_copy(update={"seed": 4}), tmp_path / "three", progress=False
    )
    assert adapter_sha256(tmp_path / "three") != adapter_sha256(tmp_path / "one")


def test_max_minutes_bounds_the_run(smollm2_dir: Path, examples: list[TrainingExample], tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    settings = TrainerSettings(max_steps=50, batch_size=1, max_minutes=0.0001, **FAST)
    result = train_lora(smollm2_dir, examples[:2], settings, tmp_path / "a", progress=False)
    assert result.stop_reason == "max_minutes" and result.steps == 1 and len(result.losses) == 1
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
    assert torch.get_num_threads() == threads  # the thread setting is restored


def test_bad_input_is_refused(smollm2_dir: Path, examples: list[TrainingExample], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training examples"):
        train_lora(smollm2_dir, [], TrainerSettings(**FAST), tmp_path / "x", progress=False)
    with pytest.raises(ValueError):
        TrainingExample(messages=[], completion="x")
    with pytest.raises(ValueError):
        TrainingExample(messages=[{"role": "user", "content": "q"}], completion="")
    long = TrainingExample(messages=[{"role": "user", "content": "q"}], completion="word " * 200)
    with pytest.raises(ValueError, match="does not fit"):
        train_lora(smollm2_dir, [long], TrainerSettings(**FAST), tmp_path / "y", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
