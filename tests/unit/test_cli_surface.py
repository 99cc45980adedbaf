"""The command line of DESIGN.md §6 exists in full."""

from __future__ import annotations

import subprocess
import sys

from services.cli import build_parser, main

COMMANDS = ["run", "demo", "intake", "schedule", "alerts", "send", "simulate", "bench"]


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "--help"], capture_output=True, text=True
    ).stdout
    for command in COMMANDS:
        assert command in out


def test_simulate_refuses_an_empty_cohort(capsys):
    assert main(["simulate", "--patients", "0", "--days", "2"]) == 2
    assert "--patients" in capsys.readouterr().err


def test_send_refuses_invalid_events_naming_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "ntx.dose.administered.v1", "subject": "p", "specversion": "1.0"}')
    assert main(["send", str(bad)]) == 2
    assert "message 1:" in capsys.readouterr().err
    assert build_parser().parse_args(["send", "--unchecked", str(bad)]).unchecked
