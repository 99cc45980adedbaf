"""Schedule numbers (DESIGN.md §4.2), each with its clinical source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from services.alerts.domain.settings import BLOCKADE_BY_MG


def _blockade() -> dict[int, timedelta]:
    # DESIGN.md §4.2 r2: holds count "§4.3's coverage": the alert rules' one table.
    return dict(BLOCKADE_BY_MG)


@dataclass(frozen=True)
class ScheduleSettings:
    # Seed: "may start with 25mg for 1-3 days to assess tolerability".
    induction_dose_mg: int = 25
    # Seed / Revia label: standard dose 50 mg once daily.
    daily_dose_mg: int = 50
    # Seed / Revia label: alternative 100 mg Monday and Wednesday, 150 mg Friday.
    monday_dose_mg: int = 100
    wednesday_dose_mg: int = 100
    friday_dose_mg: int = 150
    # Seed / Vivitrol label: 380 mg IM every 4 weeks.
    xr_dose_mg: int = 380
    xr_interval_days: int = 28
    # Vivitrol label: injection-site reactions; check the site two weeks after.
    site_check_after_days: int = 14
    # Seed: hold oral naltrexone 2-3 days before procedures needing opioids; DESIGN.md
    # §4.2 r2: a dose is held when its blockade would last past dose time on P-3.
    oral_hold_days_before: int = 3
    # Seed: hold XR-NTX 24-30 days before such procedures.
    xr_hold_days_before: int = 30
    # DESIGN.md §4.2: restarting after the procedure goes through intake again.
    reinduction_after_days: int = 1
    # ASAM 2020 / DESIGN.md §4.2 r2: liver tests monthly from a result at or above
    # 3x the upper limit of normal during treatment.
    lft_monthly_multiple: Decimal = Decimal(3)
    lft_monthly_interval_months: int = 1
    blockade_by_mg: dict[int, timedelta] = field(default_factory=_blockade)


DEFAULT_SETTINGS = ScheduleSettings()

#: ISO weekday numbers (Monday = 0) of the Mon/Wed/Fri regimen.
MONDAY, WEDNESDAY, FRIDAY = 0, 2, 4
#: DESIGN.md §4.1: the advisory that makes liver tests monthly (§4.2 r2).
ELEVATED_TRANSAMINASES = "transaminases_over_3x_uln"
