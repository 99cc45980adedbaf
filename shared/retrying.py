"""Retrying with backoff, and telling an outage from a poison input.

A transient error (the database or the broker away) says nothing about the input: the
call is retried until it works, however long that takes, so nothing is acknowledged
unhandled. Any other error is retried a few times too, in case it is one more face of
an outage, but the same call failing that way :data:`Settings.poison_attempts` times
in a row is given up (:class:`Poisoned`): the caller dead-letters the input rather than
stopping its partition for ever.

A retry never outlives a shutdown request: with ``abandon_on`` set it raises
:class:`Abandoned`, and the worker exits without acknowledging what it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("ntx.runtime")

#: The first wait after a failure, doubled after each one up to the longest.
FIRST_DELAY_S = 0.2
LONGEST_DELAY_S = 5.0


class Poisoned(Exception):
    """The same call failed ``attempts`` times in a row, not transiently."""

    def __init__(self, attempts: int, last: BaseException):
        super().__init__(f"failed {attempts} times: {type(last).__name__}")
        self.attempts = attempts
        self.last = last


class Abandoned(BaseException):
    """A shutdown was requested while a call was being retried. A BaseException, so
    no ``except Exception`` on the way turns it into a dead letter: what the call
    held must be redelivered, not acknowledged."""


async def attempt(
    func: Callable[..., Awaitable[Any]],
    *args: Any,
    transient: tuple[type[BaseException], ...],
    attempts: int,
    what: str,
    fatal: tuple[type[BaseException], ...] = (),
    abandon_on: asyncio.Event | None = None,
    level: int = logging.WARNING,
    outage: Callable[[], Awaitable[bool]] | None = None,
) -> Any:
    """``func(*args)`` until it returns. ``transient`` errors are retried for ever;
    ``fatal`` ones (unless transient) are raised at once; any other is raised as
    :class:`Poisoned` once it has happened ``attempts`` times in a row, unless
    ``outage()`` then says the dependency is away (an error of an outage nobody
    listed as transient): the count starts again. Logged as ``what`` with the
    error's type only (messages may quote input values)."""
    delay, failures = FIRST_DELAY_S, 0
    while True:
        try:
            return await func(*args)
        except transient as exc:
            failures = 0
            log.log(level, f"{what}, retrying", extra={"error": type(exc).__name__})
        except fatal:
            raise
        except Exception as exc:
            failures += 1
            if failures >= attempts:
                if outage is None or not await outage():
                    raise Poisoned(failures, exc) from exc
                failures = 0
            log.log(
                level,
                f"{what}, retrying",
                extra={"error": type(exc).__name__, "attempt": failures},
            )
        await pause(delay, abandon_on)
        delay = min(delay * 2, LONGEST_DELAY_S)


async def retry(
    func: Callable[..., Awaitable[Any]],
    *args: Any,
    errors: tuple[type[BaseException], ...],
    what: str,
    level: int = logging.WARNING,
    abandon_on: asyncio.Event | None = None,
) -> Any:
    """``func(*args)`` until it returns, retrying each of ``errors`` for ever; any
    other error is raised as it is."""
    return await attempt(
        func,
        *args,
        transient=errors,
        attempts=1,
        what=what,
        fatal=(Exception,),
        level=level,
        abandon_on=abandon_on,
    )


async def pause(seconds: float, abandon_on: asyncio.Event | None) -> None:
    """Sleep ``seconds``; raise :class:`Abandoned` as soon as ``abandon_on`` is set."""
    if abandon_on is None:
        await asyncio.sleep(seconds)
        return
    if abandon_on.is_set():
        raise Abandoned()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(abandon_on.wait(), timeout=seconds)
    if abandon_on.is_set():
        raise Abandoned()
