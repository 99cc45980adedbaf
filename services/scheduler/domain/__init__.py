"""Schedule rules, pure: what is due when for one plan (DESIGN.md §4.2)."""

from services.scheduler.domain.schedule import DueItem, due_items, preview_items, schedule_ends
from services.scheduler.domain.state import (
    PlanState,
    apply_injection,
    apply_lab,
    apply_procedure,
    apply_stop,
    new_state,
)

__all__ = [
    "DueItem",
    "PlanState",
    "apply_injection",
    "apply_lab",
    "apply_procedure",
    "apply_stop",
    "due_items",
    "new_state",
    "preview_items",
    "schedule_ends",
]
