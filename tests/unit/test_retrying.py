"""Outages are waited out; the same failure again and again is given up; a shutdown
ends any retry (shared/retrying.py)."""

from __future__ import annotations

import asyncio

import pytest

from shared import retrying
from shared.app import _until_handled
from shared.ingress import Message


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(retrying, "FIRST_DELAY_S", 0.001)
    monkeypatch.setattr(retrying, "LONGEST_DELAY_S", 0.001)


class Calls:
    def __init__(self, *errors: BaseException):
        self.errors = list(errors)
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def test_transient_errors_are_retried_however_many():
    calls = Calls(*[OSError("down")] * 50)
    got = await retrying.attempt(calls, transient=(OSError,), attempts=3, what="t")
    assert got == "done" and calls.count == 51


async def test_the_same_failure_n_times_is_given_up():
    calls = Calls(*[KeyError("k")] * 10)
    with pytest.raises(retrying.Poisoned) as err:
        await retrying.attempt(calls, transient=(OSError,), attempts=3, what="t")
    assert calls.count == 3 and err.value.attempts == 3
    assert isinstance(err.value.last, KeyError)


async def test_an_outage_between_failures_starts_the_count_again():
    calls = Calls(KeyError("k"), KeyError("k"), OSError("down"), KeyError("k"), KeyError("k"))
    assert await retrying.attempt(calls, transient=(OSError,), attempts=3, what="t") == "done"


async def test_fatal_errors_are_raised_at_once():
    calls = Calls(ValueError("refused"))
    with pytest.raises(ValueError):
        await retrying.attempt(
            calls, transient=(OSError,), attempts=3, what="t", fatal=(ValueError,)
        )
    assert calls.count == 1


async def test_a_shutdown_abandons_a_retry():
    stop = asyncio.Event()
    stop.set()
    calls = Calls(*[OSError("down")] * 1000)
    with pytest.raises(retrying.Abandoned):
        await retrying.attempt(calls, transient=(OSError,), attempts=3, what="t", abandon_on=stop)
    assert calls.count == 1


class StuckRuntime:
    """A runtime whose database never comes back."""

    def __init__(self) -> None:
        self.shutdown_requested = asyncio.Event()

    async def process_batch(self, batch: list[Message]) -> list[str]:
        raise OSError("database away")


async def test_the_agent_gives_up_a_stuck_batch_when_told_to_stop():
    runtime = StuckRuntime()
    batch = [Message("ntx.clinical.events.v1", 0, 7, b"p", b"{}")]
    retrying_batch = asyncio.ensure_future(_until_handled(runtime, batch))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not retrying_batch.done()  # an outage is waited out...
    runtime.shutdown_requested.set()
    with pytest.raises(retrying.Abandoned):  # ...until the worker is told to stop
        await asyncio.wait_for(retrying_batch, 5)


async def test_failures_during_an_outage_are_not_poison():
    """An error nobody listed as transient, while the database is away, is retried on;
    once the database answers, the same error three times running is poison."""
    calls = Calls(*[KeyError("k")] * 7)
    away = iter([True, True])

    async def outage() -> bool:
        return next(away)

    got = await retrying.attempt(calls, transient=(OSError,), attempts=3, what="t", outage=outage)
    assert got == "done" and calls.count == 8

    calls = Calls(*[KeyError("k")] * 7)

    async def answering() -> bool:
        return False

    with pytest.raises(retrying.Poisoned):
        await retrying.attempt(calls, transient=(OSError,), attempts=3, what="t", outage=answering)
    assert calls.count == 3
