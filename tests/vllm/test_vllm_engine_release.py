"""A closed vLLM generator releases its engine: nothing keeps ``AsyncLLM`` alive until interpreter
exit, where its ``__del__`` fails on torn-down globals ("Exception ignored ... NoneType")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter: vLLM's first import is what used to pin the engine, and in this test
# process an earlier test may already have imported it.
_SCRIPT = """
import asyncio, gc, sys, weakref
from pathlib import Path
from odia_stream.generation.vllm_generator import VllmGenerator
from odia_stream.settings import OdiaSettings

async def main() -> weakref.ref:
    gen = await VllmGenerator.start(OdiaSettings(state_dir=Path(sys.argv[2])), model_dir=Path(sys.argv[1]))
    engine = weakref.ref(gen._engine)
    await gen.aclose()
    return engine

if __name__ == "__main__":
    engine = asyncio.run(main())
    gc.collect()
    print("engine released" if engine() is None else "engine still referenced", flush=True)
"""


def test_a_closed_engine_is_released_before_exit(base_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "release.py"
    script.write_text(_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(base_dir), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "engine released" in done.stdout, done.stdout[-2000:]
    assert "Exception ignored" not in done.stderr, done.stderr[-3000:]
