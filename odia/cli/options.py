"""Options several ``odia`` commands share (one help text, one range per option)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["Datasets", "Limit", "Seed", "TestFraction"]

#: ``--dataset``, repeatable; each command says what it reads when none is given.
Datasets = Annotated[
    list[Path] | None,
    typer.Option(
        help="Datasets (synthetic:music[:k=v,...], SNIPS folder, HammerBench file or language folder, "
        "FC-log JSONL); repeat the option."
    ),
]
TestFraction = Annotated[float, typer.Option(help="Share of each dataset held out (whole groups).", min=0.05, max=0.9)]
Seed = Annotated[int, typer.Option(help="Seed of the split or sample.")]
Limit = Annotated[int | None, typer.Option(help="Read at most this many events per dataset.", min=1)]
