"""``ntx schedule preview``: line format, examples, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main

EXAMPLES = sorted((Path(__file__).parents[3] / "examples" / "plans").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_preview_in_time_order(path, capsys):
    assert main(["schedule", "preview", str(path), "--days", "60"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out and all(
        set(x) == {"type", "due_local", "due_utc", "dose_mg", "test", "reason"} for x in out
    )
    assert [x["due_utc"] for x in out] == sorted(x["due_utc"] for x in out)
    assert all(x["due_utc"].endswith("Z") for x in out)


def test_bad_plan_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({**json.loads(EXAMPLES[0].read_text()), "start_date": "2026-13-01"}))
    assert main(["schedule", "preview", str(path)]) == 2
    err = capsys.readouterr().err
    assert "start_date" in err and "Traceback" not in err
    assert main(["schedule", "preview", str(EXAMPLES[0]), "--days", "0"]) == 2


def test_non_utf8_file_is_bad_input_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "plan.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["schedule", "preview", str(path)]) == 2
    assert main(["intake", "evaluate", str(path)]) == 2
    assert main(["alerts", "replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert "FILE: not UTF-8 text" in err and "Traceback" not in err


def test_several_plans_preview_one_after_another(capsys):
    """``ntx schedule preview examples/plans/*.json``: each plan's lines, in file order,
    the same as previewing each alone."""
    alone = []
    for path in EXAMPLES:
        assert main(["schedule", "preview", str(path), "--days", "60"]) == 0
        alone.append(capsys.readouterr().out)
    assert main(["schedule", "preview", *map(str, EXAMPLES), "--days", "60"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "".join(alone)
    assert captured.err.splitlines() == [f"==> {p} <==" for p in EXAMPLES]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"start_date": "9999-12-20"}, "start_date"),
        ({"timezone": "localtime"}, "timezone"),
        ({"timezone": "posixrules"}, "timezone"),
        ({"oral_regimen": "mwf", "mwf_step_days": 15}, "mwf_step_days"),
    ],
)
def test_r2_bad_plans_exit_2_naming_the_field(tmp_path, capsys, changes, field):
    path = tmp_path / "plan.json"
    base = json.loads((EXAMPLES[0].parent / "oral_daily.json").read_text())
    path.write_text(json.dumps({**base, **changes}))
    assert main(["schedule", "preview", str(path), "--days", "60"]) == 2
    err = capsys.readouterr().err
    assert f"invalid input: {field}: " in err and "Traceback" not in err
