"""``odia bench train``: LoRA cost and the accuracy it buys over the base model zero-shot."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def bench_train(
    dataset: list[Path] = typer.Option([Path("../shared/datasets/snips")], help="Datasets to learn clusters from."),
    events: int = typer.Option(3000, help="Events read per dataset."),
    steps: int = typer.Option(30, help="LoRA steps (trainer.max_minutes still bounds the run)."),
    eval_records: int = typer.Option(40, help="Held-out records evaluated before and after."),
    out: Path = typer.Option(Path("reports/bench"), help="Where train.json and train.png go."),
) -> None:
    """Seconds per step, peak memory, AST accuracy before vs after fine-tuning, tokens per option."""
    from odia.bench.train_bench import run_train_bench
    from odia_stream.settings import get_settings

    run_train_bench(get_settings(), dataset, events=events, steps=steps, eval_records=eval_records, out_dir=out,
                    console=Console())
