"""``ntx send --now``: example files moved to the present stay valid, keep their
relative timing, and go out as new messages."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.cli import main
from services.intake.domain.rules import evaluate
from services.sendfile import MAX_FILE_BYTES
from services.tools import read_events, rebase
from shared.envelope import parse
from shared.events import IntakeRequested
from shared.localtime import local_today
from shared.outbox import encode
from shared.types import format_utc

EXAMPLES = Path(__file__).parents[2] / "examples" / "events"


def test_moved_messages_keep_their_spacing_and_get_new_ids():
    original = read_events(str(EXAMPLES / "missed_dose.json"))
    now = datetime(2027, 3, 10, 3, 0, tzinfo=UTC)
    moved = rebase(original, now)
    assert max(datetime.fromisoformat(m["time"]) for m in moved) == now
    for before, after in zip(original, moved, strict=True):
        assert after["id"] != before["id"]
        parse(encode(after))  # still a valid event
    due_before = datetime.fromisoformat(original[1]["data"]["due_utc"])
    due_after = datetime.fromisoformat(moved[1]["data"]["due_utc"])
    shift = due_after - due_before
    assert (
        datetime.fromisoformat(moved[1]["time"]) - datetime.fromisoformat(original[1]["time"])
        == shift
    )
    assert moved[1]["data"]["due_local"] == (
        datetime.fromisoformat(original[1]["data"]["due_local"]) + shift
    ).strftime("%Y-%m-%dT%H:%M")
    assert date.fromisoformat(moved[0]["data"]["start_date"]) == date.fromisoformat(
        original[0]["data"]["start_date"]
    ) + timedelta(days=shift.days)


def test_the_example_intake_request_is_accepted_whenever_it_is_sent():
    for now in (datetime(2027, 3, 10, 3, 0, tzinfo=UTC), datetime(2030, 7, 1, 23, 59, tzinfo=UTC)):
        (message,) = rebase(read_events(str(EXAMPLES / "intake_request.json")), now)
        request = IntakeRequested.model_validate_json(encode(message["data"]))
        assert evaluate(request, local_today(now, request.timezone)).decision == "accepted"


# --- hardening (issue 18): any input is an error naming where, never a traceback ------

GOOD = {
    "specversion": "1.0",
    "id": "hs-1",
    "source": "hs",
    "type": "ntx.dose.administered.v1",
    "time": "2026-11-30T10:00:00Z",
    "subject": "pt-1",
    "data": {"patient_id": "pt-1", "administered_at": "2026-11-30T09:55:00Z", "dose_mg": 25},
}


def message(**changes) -> dict:
    found = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = found
        for part in parents:
            target = target[part]
        target[leaf] = value
    return found


def sent(tmp_path, capsys, text: str | bytes, *flags: str) -> tuple[int, str]:
    path = tmp_path / "in.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code = main(["send", *flags, str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Nothing here may get as far as sending."""
    monkeypatch.setenv("NTX_KAFKA_BOOTSTRAP", "127.0.0.1:1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "FILE: no messages"),
        ("  \n\n", "FILE: no messages"),
        ("[]", "FILE: no messages"),
        ("[" * 100_000 + "]" * 100_000, "FILE: nested deeper than"),
        (json.dumps(message(data__x=json.loads("[" * 20 + "]" * 20))), "message 1: nested deeper"),
        (json.dumps(GOOD) + "\n{not json\n", "message 2: message: not JSON"),
        ("[1, 2]", "message 1: not a JSON object"),
        (b"\xff\xfe", "FILE: not UTF-8 text"),
        ('{"a": ' + "9" * 5000 + "}", "message 1: message: not JSON"),
        (json.dumps(message(time="0001-01-01T00:30:00+01:00")), "message 1: time:"),
        (
            json.dumps(message(data__administered_at="0001-01-01T00:30:00+01:00")),
            "message 1: data.administered_at:",
        ),
        (json.dumps(message(id="a\u0000b")), "message 1: id: contains NUL"),
        (
            json.dumps(message(data__by="\ud800")),
            "message 1: data.by: contains NUL or an unpaired surrogate",
        ),
        (json.dumps(message(time="9999-12-31T23:59:59Z")), "message 1: time:"),
        (
            json.dumps(message(time=format_utc(datetime.now(UTC) + timedelta(days=1)))),
            "message 1: time: more than 5 minutes in the future",
        ),
        (json.dumps(message(data__dose_mg=10**400)), "message 1: data.dose_mg:"),
        (json.dumps(message(type="ntx.x.v9")), "message 1: type:"),
    ],
)
def test_bad_input_is_named_with_exit_2(tmp_path, capsys, text, expected):
    code, err = sent(tmp_path, capsys, text)
    assert code == 2 and expected in err, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (json.dumps(message(time="0001-01-01T00:30:00+01:00")), "message 1: time:"),
        (
            json.dumps(message(data__administered_at="0001-01-01T00:30:00+01:00")),
            "message 1: data.administered_at:",
        ),
        ("[" * 100_000 + "]" * 100_000, "FILE: nested deeper than"),
    ],
)
def test_moving_to_now_names_what_cannot_move(tmp_path, capsys, text, expected):
    code, err = sent(tmp_path, capsys, text, "--now")
    assert code == 2 and expected in err, err


def test_unchecked_still_needs_a_subject_that_can_be_a_key(tmp_path, capsys):
    code, err = sent(tmp_path, capsys, json.dumps(message(subject="\ud800")), "--unchecked")
    assert code == 2 and "message 1: subject:" in err


def test_reading_stops_at_the_limit(monkeypatch, capsys):
    """A stream that never ends (/dev/zero) is read up to the limit and refused."""
    asked = []

    class Endless:
        def read(self, n: int) -> bytes:
            asked.append(n)
            return b"\x00" * n

    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": Endless()})())
    assert main(["send", "-"]) == 2
    assert asked == [MAX_FILE_BYTES + 1]
    assert f"FILE: larger than {MAX_FILE_BYTES} bytes" in capsys.readouterr().err


def test_dev_zero_is_refused(capsys):
    assert main(["send", "/dev/zero"]) == 2
    assert "FILE: larger than" in capsys.readouterr().err


def test_send_applies_the_services_checks_naming_the_field(tmp_path, capsys):
    """``ntx send`` refuses what the services would: an implausible dose, a recorded
    time more than 5 minutes ahead (DESIGN.md §3.3 r2)."""
    from services.cli import main

    (message,) = rebase(read_events(str(EXAMPLES / "dose_administered.json")), datetime.now(UTC))
    cases = [
        ({"dose_mg": 400}, "data.dose_mg"),
        (
            {"administered_at": (datetime.now(UTC) + timedelta(minutes=6)).isoformat()},
            "data.administered_at",
        ),
    ]
    for change, field in cases:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({**message, "data": {**message["data"], **change}}))
        assert main(["send", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"message 1: {field}: " in err and "Traceback" not in err
