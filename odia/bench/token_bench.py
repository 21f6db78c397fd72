"""``odia prompt-tokens``: tokens per prompt and per output of real records with each format option
on and off, printed, written as JSON and plotted (PNG)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from odia_stream.datasets import load_dataset
from odia_stream.datasets.synthetic_music import is_synthetic_spec
from odia_stream.figures import save_figure
from odia_stream.prompting.format import PromptOptions
from odia_stream.prompting.tokens import Tokenizer, token_report
from schemas import FCLogEvent


def sample_events(path: Path, limit: int, seed: int) -> list[FCLogEvent]:
    """Up to ``limit`` events with a call from a dataset, drawn with a seeded sample."""
    events = [e for e in load_dataset(path) if e.call is not None]
    if len(events) > limit:
        events = random.Random(seed).sample(events, limit)
    return events


def plot_report(reports: dict[str, dict[str, Any]], path: Path) -> None:
    """Bars of mean prompt and output tokens per variant, one row of panels per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(reports), 2, figsize=(12, 3.2 * len(reports)), squeeze=False)
    for row, (name, report) in enumerate(reports.items()):
        variants = list(report["variants"])
        for col, (key, title) in enumerate(
            (("prompt_tokens_mean", "prompt"), ("output_tokens_mean", "output"))
        ):
            ax = axes[row][col]
            values = [report["variants"][v][key] for v in variants]
            bars = ax.barh(variants, values, color=["#2a7" if v == "default" else "#888" for v in variants])
            ax.bar_label(
                bars, labels=[f"{x:.0f}" if x >= 100 else f"{x:.1f}" for x in values], padding=2, fontsize=8
            )
            ax.invert_yaxis()
            ax.set_title(f"{name}: mean {title} tokens ({report['records']} records)", fontsize=10)
            ax.set_xlim(0, max(values) * 1.18)
    save_figure(fig, path)


def run_token_bench(
    datasets: Sequence[Path],
    tokenizer: Tokenizer,
    *,
    limit: int, seed: int, out_dir: Path,
    base: PromptOptions | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Measure every dataset, print a table per dataset, write ``prompt_tokens.json`` and ``.png``."""
    console = console or Console()
    reports: dict[str, dict[str, Any]] = {}
    # Synthetic specs (synthetic:music) are names, not paths: they are not resolved.
    resolved = [p if is_synthetic_spec(p) else p.resolve() for p in datasets]
    files = [p for p in resolved if not is_synthetic_spec(p)]
    common = Path(os.path.commonpath(files)) if len(files) > 1 else None
    for path in resolved:
        if is_synthetic_spec(path):
            name = str(path)
        else:
            name = str(path.relative_to(common)) if common is not None and path != common else path.name
        reports[name] = token_report(sample_events(path, limit, seed), tokenizer, base=base)
        r = reports[name]
        table = Table(title=f"{name}: {r['records']} records, tokenizer {Path(r['tokenizer']).name}")
        table.add_column("variant", no_wrap=True)
        for column in ("prompt tok", "vs all_off", "output tok", "vs all_off"):
            table.add_column(column, justify="right", no_wrap=True)
        for variant, v in r["variants"].items():
            table.add_row(
                variant,
                f"{v['prompt_tokens_mean']:.1f}",
                f"{v['prompt_ratio_vs_all_off']:.3f}",
                f"{v['output_tokens_mean']:.2f}",
                f"{v['output_ratio_vs_all_off']:.3f}",
            )
        console.print(table)
        alt = r["output_alternatives"]
        console.print(
            f"output with aliases: keyed {alt['keyed']:.2f} | name/arguments {alt['name_arguments']:.2f} | "
            f"name/arguments with its opening prefilled {alt['name_arguments_prefilled']:.2f} tokens"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "prompt_tokens.json").write_text(
        json.dumps(reports, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    plot_report(reports, out_dir / "prompt_tokens.png")
    console.print(f"wrote {out_dir / 'prompt_tokens.json'} and {out_dir / 'prompt_tokens.png'}")
    return reports
