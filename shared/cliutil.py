"""Small helpers every ``ntx`` subcommand shares: read a file or stdin, report bad
input as ``field: message`` lines with exit code 2, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import ValidationError

from shared.envelope import all_errors

EXIT_BAD_INPUT = 2


def read_text(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text()


def bad_input(command: str, errors: list[tuple[str, str]]) -> int:
    for field, message in errors:
        print(f"ntx {command}: invalid input: {field}: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(e.field, e.message) for e in all_errors(exc)]
