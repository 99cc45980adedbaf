"""``ntx simulate``: not built yet (issue: end to end cohorts). ``ntx demo`` and the
end-to-end tests drive scripted patients through the same cluster driver today."""

from __future__ import annotations

from services.cli import NotBuiltError


def simulate(args) -> int:  # type: ignore[no-untyped-def]
    raise NotBuiltError(
        "not built yet: the synthetic cohort with ground-truth checks is still open; "
        "`ntx demo` runs four scripted patients through the three services"
    )
