"""The local development broker: ``noida-db`` (a Kafka-protocol server from PyPI) on 127.0.0.1.

Only development, tests and the demo use it; everything else talks Kafka through
``settings.kafka.bootstrap_servers``, so Apache Kafka works unchanged. Stop it with
:meth:`LocalBroker.down` (``noida-db down``), never by killing the process: ``down`` saves data.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class BrokerError(RuntimeError):
    """The local broker could not be started, stopped or reached."""


@dataclass(frozen=True)
class BrokerStatus:
    """Whether the local broker runs, where, and its log file."""

    running: bool
    address: str
    data_dir: Path


def _noida_binary() -> str:
    candidate = Path(sys.executable).parent / "noida-db"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("noida-db")
    if found is None:
        raise BrokerError("noida-db is not installed (pip install noida-db==0.2.3)")
    return found


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now (the OS's pick; free once this returns,
    so it suits a server started next, or an address where nothing answers)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """Start, stop and inspect a noida-db Kafka broker keeping its data in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = 9092, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.host = host

    @property
    def address(self) -> str:
        """The bootstrap address clients use."""
        return f"{self.host}:{self.port}"

    def _run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        cmd = [_noida_binary(), *args, "--data-dir", str(self.data_dir)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def status(self) -> BrokerStatus:
        """Whether the broker answers on its port."""
        return BrokerStatus(port_open(self.host, self.port), self.address, self.data_dir)

    def up(self, wait_s: float = 20.0) -> BrokerStatus:
        """Start the broker in the background (no-op if it already answers) and wait until it does."""
        if port_open(self.host, self.port):
            return self.status()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        proc = self._run("up", "--only", "kafka", "--kafka-port", str(self.port), "--host", self.host)
        if proc.returncode != 0:
            raise BrokerError(f"noida-db up failed (rc={proc.returncode}): {proc.stdout}{proc.stderr}".strip())
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if port_open(self.host, self.port):
                return self.status()
            time.sleep(0.1)
        raise BrokerError(f"broker did not open {self.address} within {wait_s:.0f}s; see {self.data_dir / 'noida.log'}")

    def down(self) -> None:
        """Stop the broker; its data (messages, committed offsets) is kept."""
        if not (self.data_dir / "noida.log").exists() and not port_open(self.host, self.port):
            return
        proc = self._run("down")
        if proc.returncode != 0 and port_open(self.host, self.port):
            raise BrokerError(f"noida-db down failed (rc={proc.returncode}): {proc.stdout}{proc.stderr}".strip())
        deadline = time.monotonic() + 10
        while port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    @contextmanager
    def running(self) -> Iterator[bool]:
        """Make sure the broker runs for the ``with`` block; stop it afterwards only if this call
        started it. Yields whether it did."""
        started = not self.status().running
        if started:
            self.up()
        try:
            yield started
        finally:
            if started:
                self.down()
