"""The ``odia prompt-tokens`` command (registered in ``odia.cli.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odia.cli.options import Datasets, Seed
from odia_stream.settings import get_settings

__all__ = ["prompt_tokens"]


def prompt_tokens(
    dataset: Datasets = None,
    limit: Annotated[int, typer.Option(help="Records sampled per dataset.", min=1)] = 300,
    seed: Seed = 0,
    out: Annotated[Path, typer.Option(help="Where prompt_tokens.json and .png go.")] = Path("reports/bench"),
) -> None:
    """Tokens per prompt and per output with each token-saving option on and off (small model's tokenizer)."""
    from transformers import AutoTokenizer

    from odia.bench.token_bench import run_token_bench
    from odia_stream.generation.base_model import ensure_base_model

    settings = get_settings()
    datasets = dataset or [
        Path("../shared/datasets/snips"),
        Path("../shared/datasets/hammerbench/zh"),
        Path("../shared/datasets/hammerbench/en"),
    ]
    tokenizer = AutoTokenizer.from_pretrained(str(ensure_base_model(settings)))
    run_token_bench(datasets, tokenizer, limit=limit, seed=seed, out_dir=out, base=settings.prompt)
