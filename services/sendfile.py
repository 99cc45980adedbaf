"""What ``ntx send`` reads and checks: a file of CloudEvents (object, array or JSON
lines), bounded in size and nesting, each message checked by the services' own door
(:func:`shared.ingress.check`) before it is sent. Any input, however broken, is
reported as ``where: field: message`` (a ``ValueError``), never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.envelope import InvalidEvent, refuse_unstorable
from shared.ingress import check
from shared.records import encode
from shared.topics import EVENT_TYPES
from shared.types import format_local_minute, format_utc

#: The largest file read: thousands of messages of a few hundred bytes each. Reading
#: stops here, so /dev/zero or a runaway pipe cannot eat memory.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: The deepest nesting of a message: an NTX event is at most five levels deep
#: (envelope, data, plan, procedures, a procedure).
MAX_DEPTH = 16


def read_events(path: str) -> list[dict]:
    """A JSON object, a JSON array, or JSON lines; each a CloudEvents message."""
    text = _read_bounded(path).strip()
    if text.startswith("["):
        found = _loads(text, "FILE")
        if not isinstance(found, list):
            raise ValueError("FILE: not a JSON array of messages")
        events = found
    elif text.startswith("{") and "\n{" not in text:
        events = [_loads(text, "message 1")]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        events = [_loads(line, f"message {n}") for n, line in enumerate(lines, 1)]
    if not events:
        raise ValueError("FILE: no messages (the file is empty)")
    for n, message in enumerate(events, 1):
        if not isinstance(message, dict):
            raise ValueError(f"message {n}: not a JSON object")
        if _depth(message) > MAX_DEPTH:
            raise ValueError(f"message {n}: nested deeper than {MAX_DEPTH} levels")
    return events


def _read_bounded(path: str) -> str:
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            with open(path, "rb") as stream:
                raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"FILE: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"FILE: larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("FILE: not UTF-8 text") from None


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of over 4,300 digits
        raise ValueError(f"{where}: message: not JSON ({exc})") from None


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        todo.extend((child, depth + 1) for child in children)
    return deepest


def check_message(n: int, message: dict, now: datetime, *, unchecked: bool = False) -> None:
    """The worker's checks; unchecked still needs a routable type and subject."""
    if message.get("type") not in EVENT_TYPES:
        raise ValueError(f"message {n}: type: unknown or missing event type")
    if not isinstance(message.get("subject"), str):
        raise ValueError(f"message {n}: subject: required")
    try:
        message["subject"].encode()  # the Kafka key, even unchecked
    except UnicodeEncodeError:
        raise ValueError(f"message {n}: subject: contains an unpaired surrogate") from None
    if unchecked:
        return
    try:
        refuse_unstorable(message)  # the door refuses these too; here the field is named
        check(encode(message), now)
    except InvalidEvent as exc:
        raise ValueError(f"message {n}: {exc}") from None
    except Exception as exc:  # a checker defect: still no traceback for an operator
        raise ValueError(f"message {n}: message: unreadable ({type(exc).__name__})") from None


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_LOCAL_MINUTE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def rebase(messages: list[dict], now: datetime) -> list[dict]:
    """The messages moved in time so the newest happens ``now``: every instant and
    local time by the same offset, every date by its whole days, each with a fresh id
    (a moved message is a new one). Example files stay valid on any day."""
    times = [_instant(n, m) for n, m in enumerate(messages, 1)]
    shift = now - max(times)
    days = timedelta(days=shift.days)  # whole days, rounded down: never into the future
    return [
        {**_moved(n, m, shift, days), "id": str(uuid.uuid4())} for n, m in enumerate(messages, 1)
    ]


def _instant(n: int, message: dict) -> datetime:
    try:
        return datetime.fromisoformat(message["time"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ValueError(
            f"message {n}: time: an RFC 3339 time within the calendar is needed to move by"
        ) from None


def _moved(n: int, message: dict, shift: timedelta, days: timedelta) -> dict:
    def move(value: object, path: str) -> object:
        if isinstance(value, dict):
            return {k: move(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v, f"{path}.{i}") for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        try:
            return _shifted(value, shift, days)
        except (ValueError, OverflowError):
            raise ValueError(
                f"message {n}: {path}: {value[:40]!r} cannot be moved by {shift.days} days"
            ) from None

    return move(message, "")  # type: ignore[return-value]


def _shifted(value: str, shift: timedelta, days: timedelta) -> str:
    if _INSTANT.match(value):
        return format_utc(datetime.fromisoformat(value) + shift)
    if _LOCAL_MINUTE.match(value):
        return format_local_minute(datetime.fromisoformat(value) + shift)
    if _DATE.match(value):
        return (date.fromisoformat(value) + days).isoformat()
    return value


__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "check_message", "read_events", "rebase"]
