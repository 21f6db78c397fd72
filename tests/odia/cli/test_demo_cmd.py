"""``odia demo``: its options default to the demo's own sizes (one place for them)."""

from __future__ import annotations

from typer.main import get_command

from odia.cli.main import app
from odia_stream.demo.sizes import DEFAULT_DATASET, DemoSizes


def test_demo_options_default_to_the_demo_sizes() -> None:
    group = get_command(app)
    demo = group.commands["demo"]  # type: ignore[attr-defined]
    defaults = {p.name: p.default for p in demo.params}
    d = DemoSizes()
    assert defaults["dataset"] == DEFAULT_DATASET
    assert (defaults["events"], defaults["held_out"], defaults["train_steps"], defaults["train_minutes"]) == (
        d.events, d.held_out, d.train_steps, d.train_minutes
    )
    assert (defaults["rate"], defaults["router_precision"]) == (d.request_rate, d.router_precision)
    assert defaults["warmup"] == d.warmup
