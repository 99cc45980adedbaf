"""The faust agent never lets a batch go unhandled: faust would acknowledge it."""

from __future__ import annotations

import asyncio

import asyncpg

from shared.app import _until_handled
from shared.runtime import Message


class FlakyRuntime:
    """Fails like a restarting database would, then works."""

    def __init__(self, failures: int):
        self.failures = failures
        self.handled: list[list[Message]] = []
        self.shutdown_requested = asyncio.Event()

    async def process_batch(self, batch: list[Message]) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise asyncpg.exceptions.InternalClientError("connection lost mid-release")
        self.handled.append(batch)
        return ["handled"] * len(batch)


async def test_a_failing_batch_is_retried_until_handled():
    batch = [Message("ntx.clinical.events.v1", 0, 7, b"p", b"{}")]
    runtime = FlakyRuntime(failures=2)
    await _until_handled(runtime, batch)  # type: ignore[arg-type]
    assert runtime.handled == [batch] and runtime.failures == 0
