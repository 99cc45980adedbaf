"""``ntx intake evaluate``: exit codes, output shape, field-named errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main

EXAMPLES = sorted((Path(__file__).parents[3] / "examples" / "intake").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_give_their_named_outcome(path, capsys):
    assert main(["intake", "evaluate", str(path), "--as-of", "2026-11-24"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == path.name.split("_")[0]
    assert set(out) == {"decision", "reasons", "earliest_start_date", "advisories", "plan"}


@pytest.mark.parametrize(
    "body, field",
    [
        (
            '{"patient_id": "p", "timezone": "Nowhere/City", "formulation": "xr", "last_opioid_use": {"date": "2026-01-01", "opioid": "heroin"}}',
            "timezone",
        ),
        (
            '{"patient_id": "p", "timezone": "UTC", "formulation": "xr", "last_opioid_use": {"date": "2026-12-01", "opioid": "heroin"}}',
            "last_opioid_use.date",
        ),
        ('{"patient_id": "p"', "input"),
    ],
)
def test_bad_input_exits_2_naming_the_field(tmp_path, capsys, body, field):
    path = tmp_path / "req.json"
    path.write_text(body)
    assert main(["intake", "evaluate", str(path), "--as-of", "2026-11-24"]) == 2
    err = capsys.readouterr().err
    assert f"invalid input: {field}" in err or (field == "input" and "invalid input" in err)
    assert "Traceback" not in err


def test_bad_as_of_and_missing_file(capsys):
    assert main(["intake", "evaluate", str(EXAMPLES[0]), "--as-of", "24/11/2026"]) == 2
    assert main(["intake", "evaluate", "/nonexistent.json"]) == 2
    assert "--as-of" in capsys.readouterr().err


def test_several_files_give_one_decision_each_in_order_headed_on_stderr(tmp_path, capsys):
    """``ntx intake evaluate examples/intake/*.json``: stdout is the single-file outputs
    in turn; stderr names each file; a bad file is reported and the rest still run."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"patient_id": "p"}')
    paths = [str(EXAMPLES[0]), str(bad), str(EXAMPLES[-1])]
    assert main(["intake", "evaluate", *paths, "--as-of", "2026-11-24"]) == 2
    captured = capsys.readouterr()
    decoder, text, outs = json.JSONDecoder(), captured.out, []
    while text.strip():
        value, end = decoder.raw_decode(text.lstrip())
        outs.append(value["decision"])
        text = text.lstrip()[end:]
    assert outs == [EXAMPLES[0].name.split("_")[0], EXAMPLES[-1].name.split("_")[0]]
    headers = [line for line in captured.err.splitlines() if line.startswith("==> ")]
    assert headers == [f"==> {p} <==" for p in paths]
    assert "invalid input: timezone" in captured.err


REQUEST = {
    "patient_id": "p",
    "timezone": "UTC",
    "formulation": "xr",
    "last_opioid_use": {"date": "2026-01-01", "opioid": "heroin"},
}


@pytest.mark.parametrize(
    "changes, as_of, field",
    [
        ({}, "9999-12-31", "--as-of"),
        ({"timezone": "localtime"}, "2026-11-24", "timezone"),
        ({"timezone": "Factory"}, "2026-11-24", "timezone"),
        (
            {"clinician_override": {"by": "dr-7", "codes": ["urine_opioid_positive"]}},
            "2026-11-24",
            "clinician_override.codes.0",
        ),
    ],
)
def test_r2_bad_input_exits_2_naming_the_field_without_a_traceback(
    tmp_path, capsys, changes, as_of, field
):
    path = tmp_path / "req.json"
    path.write_text(json.dumps({**REQUEST, **changes}))
    assert main(["intake", "evaluate", str(path), "--as-of", as_of]) == 2
    err = capsys.readouterr().err
    assert f"invalid input: {field}: " in err and "Traceback" not in err


@pytest.mark.parametrize("days, code", [(366, 0), (367, 2)])
def test_as_of_may_be_up_to_a_year_ahead(tmp_path, capsys, days, code):
    from datetime import UTC, datetime, timedelta

    path = tmp_path / "req.json"
    path.write_text(json.dumps(REQUEST))
    day = (datetime.now(UTC).date() + timedelta(days=days)).isoformat()
    assert main(["intake", "evaluate", str(path), "--as-of", day]) == code
