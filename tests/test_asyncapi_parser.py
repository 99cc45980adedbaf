"""The published AsyncAPI document parses in the official AsyncAPI parser
(``@asyncapi/parser``, installed by ``make install`` into tools/asyncapi) with no
error and no warning (DESIGN.md §7: standard clients)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TOOL = ROOT / "tools" / "asyncapi"


def parse(document: Path) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the AsyncAPI parser runs on it")
    assert (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir(), "run `make install`"
    done = subprocess.run(
        [node, str(TOOL / "validate.mjs"), str(document)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout)


def test_published_document_parses_without_errors_or_warnings():
    result = parse(ROOT / "docs" / "asyncapi.yaml")
    assert result["diagnostics"] == []


def test_the_parser_reports_a_broken_reference(tmp_path):
    """The check can fail: a dangling reference is an error."""
    text = (ROOT / "docs" / "asyncapi.yaml").read_text()
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(text.replace("#/components/schemas/Consent", "#/$defs/Consent", 1))
    result = parse(broken)
    assert result["errors"] >= 1
    assert any(code == "invalid-ref" for _, code, _, _ in result["diagnostics"])
