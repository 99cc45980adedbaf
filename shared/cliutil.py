"""Small helpers every ``ntx`` subcommand shares: read a file or stdin, report bad
input as ``field: message`` lines with exit code 2, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.envelope import all_errors

EXIT_BAD_INPUT = 2
M = TypeVar("M", bound=BaseModel)


def read_text(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text()


def each_file(paths: Sequence[str], run_one: Callable[[str], int]) -> int:
    """Run a one-file command over several files in order. With more than one, each
    file's output is preceded by ``==> FILE <==`` on stderr (as ``head`` does), so
    stdout stays a plain stream of the single-file outputs. The exit code is the
    worst of them: a bad file is reported and the others still run."""
    many = len(paths) > 1
    code = 0
    for path in paths:
        if many:
            sys.stdout.flush()
            print(f"==> {path} <==", file=sys.stderr, flush=True)
        code = max(code, run_one(path))
    return code


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
