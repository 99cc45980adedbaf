"""Small helpers every ``ntx`` subcommand shares: read a file or stdin, report bad
input as ``field: message`` lines with exit code 2, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.envelope import all_errors

EXIT_BAD_INPUT = 2
M = TypeVar("M", bound=BaseModel)


def read_text(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text()


def bad_input(command: str, errors: list[tuple[str, str]]) -> int:
    for field, message in errors:
        print(f"ntx {command}: invalid input: {field}: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(e.field, e.message) for e in all_errors(exc)]


class BadInput(Exception):
    def __init__(self, errors: list[tuple[str, str]]):
        super().__init__(errors)
        self.errors = errors


def read_model(path: str, model: type[M]) -> M:
    """A file (or stdin) parsed strictly into ``model``, or :class:`BadInput`."""
    try:
        return model.model_validate_json(read_text(path))
    except OSError as exc:
        raise BadInput([("FILE", exc.strerror or str(exc))]) from None
    except UnicodeDecodeError:
        raise BadInput([("FILE", "not UTF-8 text")]) from None
    except ValidationError as exc:
        raise BadInput(validation_errors(exc)) from None
