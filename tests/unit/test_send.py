"""``ntx send --now``: example files moved to the present stay valid, keep their
relative timing, and go out as new messages."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from services.intake.domain.rules import evaluate
from services.tools import read_events, rebase
from shared.envelope import parse
from shared.events import IntakeRequested
from shared.localtime import local_today
from shared.outbox import encode

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
