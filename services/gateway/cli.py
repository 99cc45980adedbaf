"""``ntx fhir translate FILE...`` and ``ntx cds evaluate FILE``: the gateway's pure
core with no services. Identities and held lab results live in memory for the run
(so one patient across several files keeps one pseudonym). Bad input exits 2 with
each OperationOutcome issue as ``FHIR path: message``, never a traceback."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import date

from services.gateway.domain.cds import order_sign
from services.gateway.domain.identity import InMemoryPatientIds
from services.gateway.domain.outcome import Issue, Refused
from services.gateway.domain.pairing import InMemoryPendingResults
from services.gateway.domain.translate import Repositories, translate
from shared.cliutil import EXIT_BAD_INPUT, bad_input, each_file, read_text
from shared.clock import SystemClock

TRANSLATE = "fhir translate"
EVALUATE = "cds evaluate"


def translate_files(paths: Sequence[str]) -> int:
    repos = Repositories(InMemoryPatientIds(), InMemoryPendingResults())
    return each_file(paths, lambda path: translate_file(path, repos))


def translate_file(path: str, repos: Repositories) -> int:
    try:
        raw = read_text(path)
        result = asyncio.run(translate(raw, repos, SystemClock().now()))
    except OSError as exc:
        return bad_input(TRANSLATE, [("FILE", exc.strerror or str(exc))])
    except UnicodeDecodeError:
        return bad_input(TRANSLATE, [("FILE", "not UTF-8 text")])
    except Refused as exc:
        return _refused(TRANSLATE, exc.issues)
    for event in result.events:
        print(json.dumps(event))
    _notes(TRANSLATE, [i for i in result.issues if not i.is_error])
    if result.refused_entries:
        return _refused(TRANSLATE, result.refused_entries)
    return 0


def evaluate_file(path: str, as_of: str | None) -> int:
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        return bad_input(EVALUATE, [("--as-of", "expected a date YYYY-MM-DD")])
    try:
        cards = order_sign(read_text(path), SystemClock().now(), day)
    except OSError as exc:
        return bad_input(EVALUATE, [("FILE", exc.strerror or str(exc))])
    except UnicodeDecodeError:
        return bad_input(EVALUATE, [("FILE", "not UTF-8 text")])
    except Refused as exc:
        return _refused(EVALUATE, exc.issues)
    print(json.dumps(cards, indent=2))
    return 0


def _refused(command: str, issues: list[Issue]) -> int:
    bad_input(command, [(i.expression, i.message) for i in issues])
    return EXIT_BAD_INPUT


def _notes(command: str, issues: list[Issue]) -> None:
    for i in issues:
        print(f"ntx {command}: {i.severity}: {i.line()}", file=sys.stderr)
