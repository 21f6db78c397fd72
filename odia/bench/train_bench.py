"""``odia bench train``: what distilling the small generator costs and buys on this machine.

On a fixed held-out set of a dataset's simple-cluster records: AST accuracy of the base model
zero-shot (the baseline, measured in the same run) and after LoRA fine-tuning; seconds per
training step and peak memory; tokens per prompt and output with and without each token-saving
option. Writes ``train.json`` and ``train.png`` (loss curve, accuracy before/after).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from odia_stream.clustering import SourcedItem
from odia_stream.clustering.factory import open_learner
from odia_stream.datasets import load_dataset
from odia_stream.figures import save_figure
from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.base_model import ensure_base_model
from odia_stream.generation.hf_generator import HFGenerator
from odia_stream.generation.protocol import AdapterRef
from odia_stream.prompting.tokens import token_report
from odia_stream.settings import OdiaSettings
from odia_stream.training.dataset import build_training_set
from odia_stream.training.gate import evaluate_generator
from odia_stream.training.lora import train_lora
from odia_stream.training.round import training_examples


def _learn(settings: OdiaSettings, datasets: Sequence[Path], limit: int, console: Console) -> Any:
    events = []
    for path in datasets:
        events.extend(list(load_dataset(path))[:limit])
    console.print(f"learning clusters from {len(events)} events ({', '.join(str(p) for p in datasets)})")
    learner = open_learner(settings)
    bs = settings.clustering.batch_size
    for i in range(0, len(events), bs):
        learner.process_batch([SourcedItem("bench", 0, j, e) for j, e in enumerate(events[i : i + bs], start=i)])
    return learner


def plot_train(result: dict[str, Any], path: Path) -> None:
    """Loss per step, and AST accuracy of base vs fine-tuned on the same held-out records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    losses = result["train"]["losses"]
    a.plot(range(1, len(losses) + 1), losses, marker="o", ms=3)
    a.set_xlabel("step")
    a.set_ylabel("completion-token loss")
    a.set_title(f"LoRA: {result['train']['seconds_per_step']:.1f} s/step, peak {result['train']['peak_rss_mb']:.0f} MB")
    acc = [result["eval"]["base_zero_shot"]["accuracy"], result["eval"]["fine_tuned"]["accuracy"]]
    bars = b.bar(["base zero-shot", "LoRA fine-tuned"], acc, color=["#888", "#2a7"])
    b.bar_label(bars, labels=[f"{x:.2f}" for x in acc])
    b.set_ylim(0, 1.05)
    b.set_title(f"AST accuracy on {result['eval']['records']} held-out records")
    save_figure(fig, path)


def run_train_bench(
    base: OdiaSettings,
    datasets: Sequence[Path],
    *,
    events: int,
    steps: int,
    eval_records: int,
    out_dir: Path,
    console: Console,
) -> dict[str, Any]:
    """Run the benchmark in a scratch state dir (the model cache is shared) and write its figures."""
    with tempfile.TemporaryDirectory(prefix="odia-bench-train-") as work:
        settings = base.model_copy(update={
            "state_dir": Path(work),
            "trainer": base.trainer.model_copy(update={"max_steps": steps}),
        })
        model_dir = ensure_base_model(base)  # converted once into the shared cache
        learner = _learn(settings, datasets, events, console)
        try:
            ts = build_training_set(learner, None, settings.training_data, progress=True)
        finally:
            learner.close()
        held_out = ts.eval[:eval_records]
        console.print(f"training set: {len(ts.train)} rows, {len(ts.eval)} held out ({len(held_out)} evaluated)")
        generator = HFGenerator(model_dir, dtype=settings.generator.dtype, max_new_tokens=settings.generator.max_new_tokens,
                                max_batch_size=settings.generator.max_batch_size, torch_threads=settings.generator.torch_threads)

        async def _eval(ref: AdapterRef | None) -> Any:
            if ref is not None:
                await generator.load_adapter(ref)
            return await evaluate_generator(generator, held_out, settings.prompt, ref,
                                            batch_size=settings.trainer.eval_batch_size,
                                            max_new_tokens=settings.small_answer_tokens)

        t = time.perf_counter()
        before = asyncio.run(_eval(None))
        console.print(f"base zero-shot: accuracy {before.accuracy:.3f} ({time.perf_counter() - t:.0f} s)")
        trained = train_lora(model_dir, training_examples(ts, settings), settings.trainer, Path(work) / "adapter")
        sha = adapter_sha256(trained.adapter_dir)
        after = asyncio.run(_eval(AdapterRef(f"bench-{sha[:12]}", trained.adapter_dir, sha, generator.base_model)))
        console.print(f"fine-tuned: accuracy {after.accuracy:.3f}")
        from transformers import AutoTokenizer

        tokens = token_report(ts.train[:200], AutoTokenizer.from_pretrained(str(model_dir)), base=settings.prompt)
        asyncio.run(generator.aclose())
    result: dict[str, Any] = {
        "datasets": [str(p) for p in datasets],
        "base_model": generator.base_model,
        "train": {
            "rows": len(ts.train), "steps": trained.steps, "batch_size": settings.trainer.batch_size,
            "seconds": round(trained.seconds, 1), "seconds_per_step": round(trained.seconds_per_step, 2),
            "peak_rss_mb": round(trained.peak_rss_mb, 1), "losses": [round(x, 4) for x in trained.losses],
            "stop_reason": trained.stop_reason, "trainable_params": trained.trainable_params,
        },
        "eval": {
            "records": len(held_out),
            "base_zero_shot": before.as_dict(),
            "fine_tuned": after.as_dict(),
            "accuracy_gain": round(after.accuracy - before.accuracy, 4),
        },
        "tokens": tokens,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_train(result, out_dir / "train.png")
    table = Table(title="odia bench train")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("seconds / step", f"{result['train']['seconds_per_step']:.2f}")
    table.add_row("peak memory (MB)", f"{result['train']['peak_rss_mb']:.0f}")
    table.add_row("AST accuracy, base zero-shot", f"{before.accuracy:.3f}")
    table.add_row("AST accuracy, fine-tuned", f"{after.accuracy:.3f}")
    for name, v in tokens.get("variants", {}).items():
        table.add_row(f"tokens prompt/output: {name}", f"{v['prompt_tokens_mean']:.1f} / {v['output_tokens_mean']:.1f}")
    console.print(table)
    console.print(f"wrote {out_dir / 'train.json'} and {out_dir / 'train.png'}")
    return result
