"""``odia up``'s supervisor: workers as real processes on the real broker, restarted when they
exit, stopped cleanly (SIGTERM, exit code 0)."""

from __future__ import annotations

import time

import pytest

from odia.supervisor import Supervisor
from odia_stream.settings import OdiaSettings

pytestmark = pytest.mark.slow


def _wait_alive(sup: Supervisor, name: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert sup.workers[name].alive(), sup.workers[name].log_tail()
        time.sleep(0.5)


def test_workers_start_restart_after_a_crash_and_stop_cleanly(settings: OdiaSettings) -> None:
    sup = Supervisor(settings, services=("trainer",))
    sup.start()
    try:
        _wait_alive(sup, "trainer", 8)
        with pytest.raises(ValueError, match="running already"):
            sup.start_service("trainer")
        with pytest.raises(ValueError, match="unknown service"):
            sup.start_service("nope")
        sup.start_service("agents")  # a worker added to the running loop
        first = sup.workers["trainer"].proc
        sup.workers["trainer"].kill()  # a crash
        assert sup.check() == ["trainer exited (rc=-9); restart 1/3"]
        assert sup.workers["trainer"].proc is not first
        _wait_alive(sup, "trainer", 8)
        assert sup.alive() == {"trainer": True, "agents": True}
    finally:
        codes = sup.stop(timeout_s=60)
    assert codes == {"agents": 0, "trainer": 0}, {n: sup.workers[n].log_tail() for n in codes}
