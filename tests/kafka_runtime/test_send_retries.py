"""``send_with_retries``: a send that fails is tried again with growing waits, and the last error
is raised when every attempt failed (no broker: the send is a scripted coroutine)."""

from __future__ import annotations

import pytest

from kafka_runtime.publishing import send_with_retries


class _FlakySend:
    """Fails ``failures`` times, then returns how many calls it took."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"broker away (call {self.calls})")
        return self.calls


async def test_a_send_that_fails_twice_is_retried_with_doubling_waits() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    send = _FlakySend(failures=2)
    assert await send_with_retries(send, "a dead letter", attempts=5, first_delay_s=0.5, sleep=sleep) == 3
    assert waits == [0.5, 1.0]


async def test_the_last_error_is_raised_when_every_attempt_fails(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    send = _FlakySend(failures=10)
    with pytest.raises(ConnectionError, match="call 4"):
        await send_with_retries(send, "a dead letter", attempts=4, first_delay_s=1.0, max_delay_s=3.0, sleep=sleep)
    assert send.calls == 4 and waits == [1.0, 2.0, 3.0]
    assert "a dead letter: not sent after 4 attempts" in caplog.text


async def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await send_with_retries(_FlakySend(0), "x", attempts=0)
