"""LoRA fine-tuning of the small generator (peft, a plain torch loop), bounded so a CPU run finishes.

Each example is a chat prompt (rendered with the tokenizer's chat template and
``add_generation_prompt``), an optional forced ``assistant_prefix`` and the ``completion`` the
model must write after it; the loss covers only the completion tokens and the end-of-turn token
(prompt and padding are masked with -100). Tokenisation matches generation: the prompt plus prefix
is tokenised on its own, then the completion, so training sees the same token boundary as
inference.

Training stops at ``max_steps`` or when the next step would pass ``max_minutes``, whichever comes
first. Seeds are set, so a run is deterministic for a seed (on the same machine and thread
count). The adapter is written to a temporary folder beside ``out_dir`` and renamed into place:
``out_dir`` never holds a half-written adapter.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import resource
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from odia_stream.atomic_files import staging_folder
from odia_stream.generation.base_model import base_model_id, load_causal_lm, resolve_device

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from odia_stream.settings import TrainerSettings

__all__ = ["LoraTrainResult", "TrainingExample", "encode_example", "train_lora"]

log = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass(frozen=True)
class TrainingExample:
    """One supervised example: prompt chat ``messages``, forced ``assistant_prefix``, target ``completion``.

    At generation time the model sees the same messages and prefix and should write ``completion``.
    """

    messages: Sequence[Mapping[str, str]]
    completion: str
    assistant_prefix: str = ""

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a training example needs at least one prompt message")
        if not self.completion:
            raise ValueError("a training example needs a non-empty completion")


@dataclass(frozen=True)
class LoraTrainResult:
    """What a training run produced and cost.

    ``losses``: mean completion-token loss of every step; ``seconds_per_step``: mean wall time of a
    step; ``peak_rss_mb``: the process's peak resident memory (``getrusage``, whole process life).
    """

    adapter_dir: Path
    base_model: str
    steps: int
    examples: int
    losses: list[float]
    seconds: float
    seconds_per_step: float
    peak_rss_mb: float
    stop_reason: Literal["max_steps", "max_minutes"]
    trainable_params: int
    completion_tokens: int
    seed: int
    device: str


@dataclass(frozen=True)
class _Encoded:
    input_ids: list[int]
    labels: list[int]


def encode_example(example: TrainingExample, tokenizer: PreTrainedTokenizerBase, max_seq_len: int) -> _Encoded:
    """Token ids and labels of one example (prompt masked; prompt cut from the left to fit)."""
    prompt = tokenizer.apply_chat_template(
        [dict(m) for m in example.messages], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer(prompt + example.assistant_prefix, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-turn (eos) token")
    target = tokenizer(example.completion, add_special_tokens=False)["input_ids"] + [eos]
    if len(target) >= max_seq_len:
        raise ValueError(
            f"completion of {len(target)} tokens does not fit max_seq_len={max_seq_len}: {example.completion[:80]!r}"
        )
    prompt_ids = prompt_ids[max(0, len(prompt_ids) + len(target) - max_seq_len) :]
    return _Encoded(input_ids=prompt_ids + target, labels=[IGNORE_INDEX] * len(prompt_ids) + target)


def _collate(batch: Sequence[_Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _normalise_adapter_folder(folder: Path) -> None:
    """Make the saved folder a function of the weights alone, so its sha256 is reproducible.

    peft writes ``target_modules`` in set order (varies with the hash seed) and a model-card
    README holding the local base-model path; the config is rewritten sorted, the card dropped.
    """
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise RuntimeError(f"peft wrote no adapter_config.json into {folder}")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / "README.md").unlink(missing_ok=True)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _batches(n_examples: int, batch_size: int, rng: random.Random) -> Iterator[list[int]]:
    """Endless epochs of shuffled index batches (the last short batch of an epoch is kept)."""
    while True:
        order = list(range(n_examples))
        rng.shuffle(order)
        for start in range(0, n_examples, batch_size):
            yield order[start : start + batch_size]


def train_lora(
    base_model_dir: Path,
    examples: Sequence[TrainingExample],
    settings: TrainerSettings,
    out_dir: Path,
    progress: bool = True,
    *,
    device: str = "auto",
) -> LoraTrainResult:
    """Fine-tune a LoRA adapter on ``examples`` and write it (peft format) atomically to ``out_dir``.

    ``out_dir`` must not exist yet. Raises ``ValueError`` for no examples or an example whose
    completion alone does not fit ``settings.max_seq_len``.
    """
    from peft import LoraConfig, get_peft_model

    base_model_dir = Path(base_model_dir)
    out_dir = Path(out_dir)
    if not examples:
        raise ValueError("no training examples")
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; adapters are written once, never overwritten")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads or os.cpu_count() or 1)
    started = time.perf_counter()
    try:
        _seed_everything(settings.seed)
        device = resolve_device(device)
        model, tokenizer = load_causal_lm(base_model_dir, dtype="float32", device=device)
        encoded = [encode_example(e, tokenizer, settings.max_seq_len) for e in examples]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        model.config.use_cache = False
        lora = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=settings.lora_target_modules,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
        model.peft_config["default"].base_model_name_or_path = base_model_id(base_model_dir)
        trainable = [p for p in model.parameters() if p.requires_grad]
        n_trainable = sum(p.numel() for p in trainable)
        optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        model.train()
        budget_s = settings.max_minutes * 60.0
        batches = _batches(len(encoded), settings.batch_size, random.Random(settings.seed))
        losses: list[float] = []
        step_seconds: list[float] = []
        completion_tokens = 0
        stop_reason: Literal["max_steps", "max_minutes"] = "max_steps"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else None
        bar = tqdm(total=settings.max_steps, desc="LoRA", unit="step", disable=not progress, leave=False)
        try:
            for step in range(settings.max_steps):
                t0 = time.perf_counter()
                batch = _collate([encoded[i] for i in next(batches)], pad_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                completion_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
                if autocast is not None:
                    with autocast:
                        loss = model(**batch).loss
                else:
                    loss = model(**batch).loss
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"LoRA training diverged: loss {loss.item()} at step {step + 1}")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.item()))
                step_seconds.append(time.perf_counter() - t0)
                log.info("lora step %d/%d loss %.4f (%.2f s)", step + 1, settings.max_steps, losses[-1], step_seconds[-1])
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                elapsed = time.perf_counter() - started  # model loading counts too
                if step + 1 < settings.max_steps and elapsed + float(np.mean(step_seconds)) > budget_s:
                    stop_reason = "max_minutes"
                    log.info("lora: stopping after %d steps (max_minutes=%s)", step + 1, settings.max_minutes)
                    break
        finally:
            bar.close()
        model.eval()
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        with staging_folder(out_dir.parent, prefix=f".{out_dir.name}.") as staging:
            staged = staging / "adapter"
            # The embeddings are not trained; without this peft looks the base id up on a hub.
            model.save_pretrained(staged, save_embedding_layers=False)
            _normalise_adapter_folder(staged)
            os.rename(staged, out_dir)
    finally:
        torch.set_num_threads(previous_threads)
    mean_step = float(np.mean(step_seconds)) if step_seconds else math.nan
    return LoraTrainResult(
        adapter_dir=out_dir,
        base_model=base_model_id(base_model_dir),
        steps=len(losses),
        examples=len(encoded),
        losses=losses,
        seconds=time.perf_counter() - started,
        seconds_per_step=mean_step,
        peak_rss_mb=_peak_rss_mb(),
        stop_reason=stop_reason,
        trainable_params=n_trainable,
        completion_tokens=completion_tokens,
        seed=settings.seed,
        device=device,
    )
