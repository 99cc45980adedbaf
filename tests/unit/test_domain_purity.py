"""The rules stay pure (DESIGN.md §1, issue 14): no module of a ``services/*/domain``
package imports the topic registry, the envelope, the runtime, a Kafka or PostgreSQL
client or faust, directly or through what it imports. So the worker, the CLI and the
unit tests run the same rules, and a domain test needs no broker and no database."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FORBIDDEN = (
    "shared.topics",
    "shared.envelope",
    "shared.runtime",
    "aiokafka",
    "asyncpg",
    "faust",
)
#: Domains built before this rule that still build envelopes in their domain; each
#: test below fails (strict xfail) once the domain is pure, so the mark must go then.
NOT_YET_PURE = {
    "gateway": "issue 15: its translation builds envelopes (shared.envelope) in the domain",
    "notifier": "issue 16: acknowledgements build envelopes (shared.envelope) in the domain",
}
DOMAINS = sorted(p.parent.parent.name for p in ROOT.glob("services/*/domain/__init__.py"))


def _domain(name: str):  # type: ignore[no-untyped-def]
    reason = NOT_YET_PURE.get(name)
    return pytest.param(
        name, marks=[pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    )


def forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def imported(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return imported_by(path.read_text(), package)


def imported_by(source: str, package: str) -> set[str]:
    """The modules a module of ``package`` imports, ``from shared import topics`` as
    ``shared.topics`` and relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_every_core_service_has_a_domain():
    assert {"alerts", "intake", "scheduler"} <= set(DOMAINS)


@pytest.mark.parametrize("name", [_domain(d) for d in DOMAINS])
def test_no_domain_module_imports_messaging_or_storage(name):
    bad = {
        str(path.relative_to(ROOT)): sorted(m for m in imported(path) if forbidden(m))
        for path in sorted((ROOT / "services" / name / "domain").rglob("*.py"))
    }
    assert {path: mods for path, mods in bad.items() if mods} == {}


@pytest.mark.parametrize("name", [_domain(d) for d in DOMAINS])
def test_importing_a_domain_loads_no_messaging_or_storage(name):
    """Indirect imports too: a fresh interpreter imports every module of the domain
    and reports what got loaded."""
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in sorted((ROOT / "services" / name / "domain").rglob("*.py"))
    ]
    probe = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert [m for m in json.loads(out.stdout) if forbidden(m)] == []


@pytest.mark.parametrize(
    "source, found",
    [
        ("from shared.topics import event_type", True),
        ("from shared import envelope", True),
        ("import asyncpg", True),
        ("import faust.types", True),
        ("from aiokafka.partitioner import murmur2", True),
        ("from shared.runtime import Context", True),
        ("from shared.ids import stable_id", False),
        ("from shared.events import DoseDue", False),
        ("import faustian", False),
        ("from shared.topicsx import y", False),
        ("def f():\n    from shared.envelope import build", True),
        ("from ...runtime import Context", False),  # services.runtime: not shared's
        ("from . import engine", False),
    ],
)
def test_the_check_tells_forbidden_imports_apart(source, found):
    modules = imported_by(source, "services.alerts.domain")
    assert any(forbidden(m) for m in modules) is found


def test_relative_imports_are_resolved():
    assert "services.alerts.domain.engine" in imported_by(
        "from . import engine", "services.alerts.domain"
    )
    assert "services.alerts.settings" in imported_by(
        "from ..settings import X", "services.alerts.domain"
    )
