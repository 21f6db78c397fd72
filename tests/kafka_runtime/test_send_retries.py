"""``send_with_retries``: a send that fails is tried again with growing waits, and the last error
is raised when every attempt failed; ``send_until_sent``: after that, the caller waits (blocked,
reported) until the send succeeds. No broker: the send is a scripted coroutine."""

from __future__ import annotations

import pytest

from kafka_runtime.publishing import send_until_sent, send_with_retries


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


async def test_a_send_that_keeps_failing_blocks_reports_why_and_goes_on_once_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    reports: list[str | None] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    send = _FlakySend(failures=7)  # two rounds of 3 attempts fail, the third round's first succeeds
    result = await send_until_sent(
        send, "dead letter of fc/0@5", attempts=3, blocked_retry_s=30.0, on_blocked=reports.append, sleep=sleep
    )
    assert result == 8 and send.calls == 8
    assert waits == [0.5, 1.0, 30.0, 0.5, 1.0, 30.0, 0.5]
    assert reports == [
        "dead letter of fc/0@5 not sent: ConnectionError('broker away (call 3)')",
        "dead letter of fc/0@5 not sent: ConnectionError('broker away (call 6)')",
        None,
    ]
    assert "reading waits (nothing after it is committed)" in caplog.text
    assert "sent after a block; reading goes on" in caplog.text


async def test_a_send_that_succeeds_at_once_reports_nothing() -> None:
    reports: list[str | None] = []
    assert await send_until_sent(_FlakySend(0), "x", on_blocked=reports.append) == 1
    assert reports == []
