"""``ntx alerts replay FILE``: alert events of a JSON-lines replay, one per line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from services.alerts.replay import AlertMoment, ReplayError, replay_events
from shared.cliutil import bad_input, read_text
from shared.topics import short_type
from shared.types import format_utc

COMMAND = "alerts replay"


def replay(path: str) -> int:
    try:
        text = read_text(path)
    except OSError as exc:
        return bad_input(COMMAND, [("FILE", exc.strerror or str(exc))])
    except UnicodeDecodeError:
        return bad_input(COMMAND, [("FILE", "not UTF-8 text")])
    try:
        out = list(replay_lines(text.splitlines()))
    except ReplayError as exc:
        return bad_input(COMMAND, [tuple(str(exc).split(": ", 1))])  # type: ignore[list-item]
    for line in out:
        print(json.dumps(line))
    return 0


def replay_lines(lines: Iterable[str]) -> Iterator[dict]:
    """The §6 replay output, one dict per line."""
    return (replay_line(moment) for moment in replay_events(lines))


def replay_line(moment: AlertMoment) -> dict:
    """``{"at", "type", "alert", "severity", "reason", "patient_id"}`` (DESIGN.md §6)."""
    d = moment.data
    return {
        "at": format_utc(moment.at),
        "type": short_type(moment.type),
        "alert": d.alert,
        "severity": d.severity,
        "reason": d.reason,
        "patient_id": d.patient_id,
    }
