"""Clocks: the one source of "now" for every rule, timer and service.

* :class:`SystemClock` - wall time.
* :class:`SimulatedClock` - in-process, moved by a driver (replay, unit tests).
* :class:`FileClock` - a simulated moment shared by separate processes through a
  small file that the driver rewrites atomically (``NTX_CLOCK_FILE``); lets the
  end-to-end runs push the three services through a year in seconds.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    def __init__(self, start: datetime):
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        moment = _aware(moment)
        if moment < self._now:
            raise ValueError("a simulated clock never moves backwards")
        self._now = moment


class FileClock:
    """Reads the simulated moment from ``path``; :meth:`set` is for the driver."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def now(self) -> datetime:
        text = self.path.read_text().strip()
        return _aware(datetime.fromisoformat(text))

    def set(self, moment: datetime) -> None:
        moment = _aware(moment)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".clock")
        with os.fdopen(fd, "w") as fh:
            fh.write(moment.isoformat())
        os.replace(tmp, self.path)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("clock moments must carry a time zone")
    return moment.astimezone(UTC)


def clock_from_env() -> Clock:
    path = os.environ.get("NTX_CLOCK_FILE")
    return FileClock(path) if path else SystemClock()
