"""``ntx bench``: not built yet (issue: performance and scale)."""

from __future__ import annotations

from services.cli import NotBuiltError


def bench(args) -> int:  # type: ignore[no-untyped-def]
    raise NotBuiltError("not built yet: the benchmark of issue-level targets is still open")
