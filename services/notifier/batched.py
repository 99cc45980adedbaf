"""Concurrent writes joined into one: attempts finishing together are recorded in
one transaction instead of one each, so a busy endpoint costs a few statements per
batch of deliveries rather than several per delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batched(Generic[Item, Result]):
    """``submit`` waits for its item's result; ``write`` gets every item submitted
    while the previous write ran, and returns one result per item, in order."""

    def __init__(self, write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]):
        self.write = write
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(0)  # items submitted in this same turn join the batch
            batch, self._queue = self._queue, []
            try:
                results = await self.write([item for item, _ in batch])
            except Exception as exc:  # each submitter sees the failure as its own
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
