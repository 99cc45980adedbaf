"""Structured JSON-line logging. Records carry ids, codes and counts only: never a
name, a request body or a clinical value (DESIGN.md §3)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
#: Fields that may never reach a log line even if a caller passes them.
_FORBIDDEN = {"data", "body", "raw", "value", "alt", "ast", "name"}


#: The trace ids of the input being handled, added to every line logged meanwhile.
_TRACE_IDS: ContextVar[str | None] = ContextVar("ntx_trace_ids", default=None)


@contextlib.contextmanager
def tracing_ids(trace_ids: str | None) -> Iterator[None]:
    """Every line logged inside carries ``trace_ids`` (one request can then be followed
    through every service's log); ids only, never a value."""
    token = _TRACE_IDS.set(trace_ids or None)
    try:
        yield
    finally:
        _TRACE_IDS.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "ntx"):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _FORBIDDEN and not key.startswith("_"):
                line[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        trace_ids = _TRACE_IDS.get()
        if trace_ids and "trace_ids" not in line:
            line["trace_ids"] = trace_ids
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


def logging_config(service: str, level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for faust's Worker and plain processes alike."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "aiokafka": {"level": "WARNING"},
            "faust": {"level": "WARNING"},
            "mode": {"level": "WARNING"},
        },
    }
