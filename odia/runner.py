"""Run the ingest worker as a separate process and watch its progress through Kafka.

Used by ``odia demo`` and the integration tests: the worker runs exactly as in production
(its own process, configured by ``ODIA_`` environment variables), and progress is read from
the consumer group's committed offsets, as an operator would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from kafka_runtime.clients import group_lag
from odia_stream.settings import OdiaSettings


def _plain(value: Any) -> Any:
    """``value`` with secrets revealed and paths as strings (for a child's environment)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def settings_env(settings: OdiaSettings) -> dict[str, str]:
    """``ODIA_`` environment variables that reproduce ``settings`` in a child process (every group
    as JSON, the state dir absolute)."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = _plain(getattr(settings, name))
        if value is None:
            continue
        if name == "state_dir":
            value = str(Path(value).resolve())
        env[f"ODIA_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


#: ``python -m <module>``, except that a SIGTERM arriving while it still imports and starts (before
#: the worker installs its own graceful handler) exits with code 0 instead of dying by the signal.
_LAUNCH = (
    "import runpy, signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
    "module = sys.argv.pop(1); runpy.run_module(module, run_name='__main__', alter_sys=True)"
)


class WorkerProcess:
    """A worker in a child process: the ingest worker (``python -m agents.worker``) by default, or
    another module (``trainer``, ``serving``) configured the same way."""

    def __init__(self, settings: OdiaSettings, log_path: Path, module: str = "agents.worker") -> None:
        self.settings = settings
        self.log_path = log_path
        self.module = module
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker; its output goes to ``log_path``."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ODIA_")}  # settings win whole
        env = {**inherited, **settings_env(self.settings), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, self.module], env=env, stdout=log, stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )

    def alive(self) -> bool:
        """Whether the worker process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (graceful: Faust commits and closes), SIGKILL after ``timeout_s``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, for recovery tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the worker's log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_caught_up(
    settings: OdiaSettings, worker: WorkerProcess | None = None, timeout_s: float = 600.0, poll_s: float = 1.0
) -> None:
    """Block until the worker's group has committed every fc-logs message (lag 0).

    Raises ``RuntimeError`` when the worker dies, ``TimeoutError`` after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    topic = settings.topics.fc_logs.name
    while True:
        if worker is not None and not worker.alive():
            raise RuntimeError(f"worker exited (rc={worker.proc.returncode if worker.proc else None}):\n{worker.log_tail()}")
        _, lag = group_lag(settings.kafka, settings.app_id, topic)
        if lag == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker still {lag} messages behind after {timeout_s:.0f}s")
        time.sleep(poll_s)
