"""``ntx alerts replay FILE``: alert events of a JSON-lines replay, one per line."""

from __future__ import annotations

import json

from services.alerts.replay import ReplayError, replay_lines
from shared.cliutil import bad_input, read_text

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
