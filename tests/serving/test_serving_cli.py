"""``odia serve run`` and ``odia bench serve`` are registered and describe their options."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from odia.cli.main import app


def test_serve_and_bench_serve_commands_exist() -> None:
    runner = CliRunner()
    serve = runner.invoke(app, ["serve", "run", "--help"])
    assert serve.exit_code == 0 and "--backend" in serve.output and "--metrics-port" in serve.output
    bench = runner.invoke(app, ["bench", "serve", "--help"])
    assert bench.exit_code == 0
    for option in ("--backend", "--concurrency", "--requests", "--large-median-ms", "--out"):
        assert option in bench.output


def test_a_bad_backend_is_refused_before_anything_starts() -> None:
    from odia_stream.serving import resolve_backend

    with pytest.raises(ValueError, match="unknown serving backend"):
        resolve_backend("tensorrt")
    assert resolve_backend("hf") == "hf"
