"""Alert numbers (DESIGN.md §4.3), each with its clinical source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from shared.events import XR_DOSE_MG

#: DESIGN.md §4.3: how long one dose blocks, counted from administration. The
#: scheduler's surgical holds (§4.2) count the same coverage, from this table.
BLOCKADE_BY_MG: dict[int, timedelta] = {
    # Seed / Revia label: 50 mg blocks 25 mg IV heroin for up to 24 hours;
    # the 25 mg induction dose is counted the same (conservative: no longer).
    25: timedelta(hours=24),
    50: timedelta(hours=24),
    # Revia label: 100 mg blocks for 48 hours, 150 mg for 72 hours.
    100: timedelta(hours=48),
    150: timedelta(hours=72),
    # Seed / Vivitrol label: one 380 mg injection lasts about 4 weeks.
    380: timedelta(days=28),
}


def _coverage() -> dict[int, timedelta]:
    return dict(BLOCKADE_BY_MG)


@dataclass(frozen=True)
class AlertSettings:
    coverage_by_mg: dict[int, timedelta] = field(default_factory=_coverage)
    # DESIGN.md §4.3: an oral dose not recorded within 12 h is missed.
    missed_dose_after: timedelta = timedelta(hours=12)
    # DESIGN.md §4.3: an injection not recorded within 72 h is missed.
    missed_injection_after: timedelta = timedelta(hours=72)
    # Seed ("patients who discontinue have increased overdose risk"); DESIGN.md
    # §4.3: alert when coverage ended 48 h (oral) or 7 days (XR) ago.
    lapse_grace_oral: timedelta = timedelta(hours=48)
    lapse_grace_xr: timedelta = timedelta(days=7)
    # DESIGN.md §4.3: unacknowledged critical alerts escalate after 1 h, high after 24 h.
    escalate_critical_after: timedelta = timedelta(hours=1)
    escalate_high_after: timedelta = timedelta(hours=24)
    # DESIGN.md §4.3 r2: a critical alert none of whose notifications could be
    # delivered escalates at once; once per alert, so a receiver that stays down
    # (or no endpoint at all) never turns the escalation's own failed round into a
    # loop. The time-based escalations above are counted apart.
    undelivered_escalations_per_alert: int = 1
    # The severities DESIGN.md §4.3 r2 escalates on undelivered notifications.
    escalate_undelivered_severities: frozenset[str] = frozenset({"critical"})
    # Most fatal overdoses after XR-NTX came within 2 months of the last injection
    # (DESIGN.md §4.3): the post-stop risk, and positive screens within it, count.
    post_stop_risk: timedelta = timedelta(days=60)
    # DESIGN.md §4.3 r2 is silent on how long tolerance_lost_after_hold stays open:
    # the same 2 months as after a stop (blockade and tolerance are gone alike).
    post_hold_risk: timedelta = timedelta(days=60)
    # Revia label / ASAM 2020: hepatotoxicity warning at 3x ULN, high at 5x ULN.
    hepatotoxicity_warning_multiple: Decimal = Decimal(3)
    hepatotoxicity_high_multiple: Decimal = Decimal(5)
    # An administration settles the oldest outstanding due at most this early.
    early_administration: timedelta = timedelta(hours=12)
    # How long an administration (or a not-given record) waits for the due it
    # settles (it may arrive first: another topic).
    unmatched_kept_for: timedelta = timedelta(days=2)

    def coverage(self, dose_mg: int, injection: bool) -> timedelta:
        """Protection from one dose; the event contracts admit only listed doses
        (DESIGN.md §3.3 r2), so nothing is ever mapped to a neighbour."""
        return self.coverage_by_mg[XR_DOSE_MG if injection else dose_mg]


DEFAULT_SETTINGS = AlertSettings()
