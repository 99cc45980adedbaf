"""The one supervised loop (shared/supervised.py): idle polls, backoff with jitter on
failure, failures reported to /readyz's progress, and a wake-up cutting a sleep short."""

from __future__ import annotations

import asyncio

import pytest

from shared import supervised
from shared.ingress import Message
from shared.progress import Progress
from shared.supervised import Loop, next_backoff


def test_backoff_doubles_from_the_first_delay_up_to_the_longest():
    waits, backoff = [], 0.05
    for _ in range(7):
        backoff = next_backoff(backoff)
        waits.append(backoff)
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_jitter_keeps_a_backoff_between_half_and_all_of_itself():
    seen = {supervised._jittered(4.0, 0.05) for _ in range(200)}
    assert all(2.0 <= s <= 4.0 for s in seen) and len(seen) > 100
    assert supervised._jittered(0.05, 0.05) == 0.05  # an idle poll is not jittered


async def test_a_failing_step_is_retried_and_reported_until_it_works(monkeypatch):
    monkeypatch.setattr(supervised, "LONGEST_DELAY_S", 0.01)
    progress, stopping, failing_then = Progress(stall_after_s=30), asyncio.Event(), []

    async def step() -> int:
        failing_then.append(set(progress.failing))
        if len(failing_then) <= 2:
            raise OSError("database away")
        stopping.set()
        return 0

    await asyncio.wait_for(Loop("relay", step, 0.001).run(stopping, progress, "t"), 10)
    assert failing_then == [set(), {"relay"}, {"relay"}]  # reported while it failed
    assert progress.failing == {}  # it worked again: no longer reported


async def test_a_wakeup_cuts_an_idle_sleep_short():
    stopping, rounds = asyncio.Event(), []

    async def step() -> int:
        rounds.append(1)
        if len(rounds) == 2:
            stopping.set()
        return 0

    loop = Loop("relay", step, poll_s=60)
    task = asyncio.ensure_future(loop.run(stopping, Progress(stall_after_s=30), "t"))
    await asyncio.sleep(0.05)
    assert rounds == [1]  # asleep for a minute...
    loop.wake()
    await asyncio.wait_for(task, 5)  # ...until woken
    assert rounds == [1, 1]


async def test_a_busy_step_goes_again_at_once():
    stopping, rounds = asyncio.Event(), []

    async def step() -> int:
        rounds.append(1)
        if len(rounds) == 5:
            stopping.set()
        return 10

    await asyncio.wait_for(
        Loop("timers", step, poll_s=60).run(stopping, Progress(stall_after_s=30), "t"), 5
    )
    assert len(rounds) == 5


@pytest.mark.parametrize("name", ["relay", "timers", "housekeeping"])
def test_loops_are_reported_by_their_name(name):
    progress = Progress(stall_after_s=0.0)
    progress.loop_failed(name)
    assert progress.stalled()[0].startswith(f"{name} failing for")


def test_lag_counts_from_what_was_handled_else_from_the_committed_offset():
    progress = Progress(stall_after_s=30)
    progress.batch_done([Message("t", 0, 41, b"k", b"{}")])
    ends = {("t", 0): 50, ("t", 1): 9, ("t", 2): 3}
    assert progress.lag(ends, {("t", 1): 4}) == {("t", 0): 8, ("t", 1): 5}
    assert progress.lag({("t", 0): 40}, {}) == {("t", 0): 0}  # never negative
