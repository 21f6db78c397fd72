"""``odia up``: the loop's workers as separate processes under one supervisor.

Starts the local broker when the configured one is local and not running, creates the topics,
then runs the ingest agents, the trainer and the serving consumer as child processes (each
exactly as production runs it, configured through ``ODIA_`` variables). A worker that exits is
reported and restarted (up to a limit); Ctrl-C / SIGTERM stops every worker gracefully, then
the broker if the supervisor started it.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka_runtime.local_broker import LocalBroker
from kafka_runtime.topics import ensure_topics
from odia.runner import WorkerProcess
from odia_stream.settings import OdiaSettings

#: Worker name → the module its process runs.
SERVICES: dict[str, str] = {"agents": "agents.worker", "trainer": "trainer", "serving": "serving"}


def broker_is_local(settings: OdiaSettings) -> bool:
    """Whether the configured broker is the local development one."""
    return settings.kafka.bootstrap_servers in (
        f"127.0.0.1:{settings.kafka.local_port}", f"localhost:{settings.kafka.local_port}"
    )


@dataclass
class Supervisor:
    """Child processes of the loop; ``start()``, ``check()`` periodically, ``stop()``."""

    settings: OdiaSettings
    services: Sequence[str] = tuple(SERVICES)
    max_restarts: int = 3
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    def log_path(self, name: str) -> Path:
        """Where a worker's output goes."""
        return self.settings.state_dir / "logs" / f"{name}.log"

    def start(self) -> None:
        """Create the topics and start every worker."""
        unknown = [s for s in self.services if s not in SERVICES]
        if unknown:
            raise ValueError(f"unknown services {unknown}; choose from {sorted(SERVICES)}")
        ensure_topics(self.settings.kafka, self.settings.topics.all())
        for name in self.services:
            self.start_service(name)

    def start_service(self, name: str) -> None:
        """Start one more worker (one of ``SERVICES``; topics must exist)."""
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}; choose from {sorted(SERVICES)}")
        if name in self.workers and self.workers[name].alive():
            raise ValueError(f"{name} is running already")
        w = WorkerProcess(self.settings, self.log_path(name), module=SERVICES[name])
        w.start()
        self.workers[name] = w
        self.restarts.setdefault(name, 0)

    def stop_service(self, name: str, timeout_s: float = 60.0) -> int | None:
        """Stop one worker for good (``check`` no longer restarts it); its exit code."""
        w = self.workers.pop(name, None)
        return w.stop(timeout_s) if w is not None else None

    def check(self) -> list[str]:
        """Restart workers that exited (within ``max_restarts``); returns what happened."""
        events = []
        for name, w in self.workers.items():
            if w.alive():
                continue
            rc = w.proc.returncode if w.proc else None
            if self.restarts[name] >= self.max_restarts:
                events.append(f"{name} exited (rc={rc}) and reached its restart limit; see {w.log_path}")
                continue
            self.restarts[name] += 1
            events.append(f"{name} exited (rc={rc}); restart {self.restarts[name]}/{self.max_restarts}")
            w.start()
        return events

    def alive(self) -> dict[str, bool]:
        """Which workers run."""
        return {name: w.alive() for name, w in self.workers.items()}

    def stop(self, timeout_s: float = 60.0) -> dict[str, int | None]:
        """SIGTERM every worker (serving first, ingest last), SIGKILL after ``timeout_s``."""
        codes = {}
        for name in reversed(list(self.workers)):
            codes[name] = self.workers[name].stop(timeout_s)
        return codes


@contextlib.contextmanager
def running_loop(settings: OdiaSettings, services: Sequence[str] = tuple(SERVICES)) -> Iterator[Supervisor]:
    """The broker (if local) and the workers, stopped on exit."""
    with contextlib.ExitStack() as stack:
        if broker_is_local(settings):
            stack.enter_context(LocalBroker(settings.broker_dir, port=settings.kafka.local_port).running())
        sup = Supervisor(settings, services)
        stack.callback(sup.stop)
        sup.start()
        yield sup


def supervise(settings: OdiaSettings, services: Sequence[str], poll_s: float = 2.0) -> None:
    """Run until interrupted, restarting workers that exit."""
    from rich.console import Console

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    console = Console()
    with running_loop(settings, services) as sup:
        console.print(f"running {', '.join(services)}; logs in {settings.state_dir / 'logs'}; Ctrl-C stops them")
        try:
            while True:
                for line in sup.check():
                    console.print(f"[yellow]{line}[/]")
                time.sleep(poll_s)
        except KeyboardInterrupt:
            console.print("stopping…")
