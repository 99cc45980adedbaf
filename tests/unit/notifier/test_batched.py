"""Writes submitted together are written together, each submitter gets its own
result, and a failed write fails only the submitters of that batch."""

from __future__ import annotations

import asyncio

import pytest

from services.notifier.batched import Batched


async def test_concurrent_submissions_share_one_write_and_keep_their_results():
    writes: list[list[int]] = []

    async def write(items):
        writes.append(list(items))
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    batched = Batched(write)
    results = await asyncio.gather(*(batched.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert writes == [[0, 1, 2, 3, 4]]


async def test_items_submitted_during_a_write_go_in_the_next_one():
    writes: list[list[int]] = []
    started = asyncio.Event()

    async def write(items):
        writes.append(list(items))
        started.set()
        await asyncio.sleep(0.01)
        return list(items)

    batched = Batched(write)
    first = asyncio.create_task(batched.submit(1))
    await started.wait()
    assert await asyncio.gather(batched.submit(2), batched.submit(3), first) == [2, 3, 1]
    assert writes == [[1], [2, 3]]


async def test_a_failed_write_fails_its_own_submitters_only():
    calls = 0

    async def write(items):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return list(items)

    batched = Batched(write)
    with pytest.raises(ConnectionError):
        await batched.submit("a")
    assert await batched.submit("b") == "b"
