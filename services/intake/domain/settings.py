"""Intake thresholds (DESIGN.md §4.1), each with its clinical source."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

#: Revision 2 of the rules (DESIGN.md r2, 2026-11-30): every decision records it.
RULESET_VERSION = "intake-2026.11.2"


@dataclass(frozen=True)
class IntakeSettings:
    # Seed document: "must be opioid-free for 7-10 days"; Revia/Vivitrol labels:
    # 7-10 days after short-acting opioids.
    short_acting_free_days: int = 7
    # DESIGN.md §4.1 r2: fentanyl takes the seed's upper bound (10 days): lipophilic,
    # it clears slowly in chronic use.
    fentanyl_free_days: int = 10
    # Vivitrol label and ASAM 2020: up to 14 days after methadone or buprenorphine.
    long_acting_free_days: int = 14
    # ASAM 2020 / SAMHSA TIP 63: confirm abstinence with a recent urine screen.
    urine_screen_max_age_days: int = 3
    # DESIGN.md §4.1 r2 (ASAM 2020 on fentanyl): a negative naloxone challenge from
    # the last 3 days before starting after fentanyl.
    naloxone_challenge_max_age_days: int = 3
    # Seed: liver function tests at baseline; ASAM 2020: within the last month.
    liver_panel_max_age_days: int = 30
    # Revia label: contraindicated in acute hepatitis; ASAM 2020: avoid >5x ULN.
    transaminase_reject_multiple: Decimal = Decimal(5)
    # ASAM 2020: transaminases above 3x ULN warrant closer monitoring.
    transaminase_advisory_multiple: Decimal = Decimal(3)
    # Seed: hold XR-NTX 24-30 days before elective procedures needing opioids.
    procedure_window_xr_days: int = 30
    # DESIGN.md §4.1 r2: 7 days for oral (the seed's 2-3 day hold, plus the few
    # doses a start just before an operation would amount to).
    procedure_window_oral_days: int = 7
    # DESIGN.md §4.1 r2: post-operative analgesia needs its own opioid-free window,
    # the short-acting one (seed: 7 days); re-evaluation checks the actual last use.
    post_procedure_free_days: int = 7
    # Vivitrol label: a positive naloxone challenge means repeat no sooner than 24 h.
    naloxone_retry_days: int = 1
    # Seed: liver tests every 3-6 months; monthly while above 3x ULN (ASAM 2020).
    lft_interval_months: int = 3
    lft_interval_months_elevated: int = 1
    # Seed: "regular monitoring through urine drug testing"; weekly (SAMHSA TIP 63).
    uds_interval_days: int = 7
    # Seed: typical treatment 3-12 months; review at 6.
    review_after_months: int = 6
    # Seed: best suited to patients with stable support, employment, low craving;
    # two or more of those missing flags a high risk of dropping out (DESIGN.md r2:
    # failed agonist treatment is an indication, not one of them).
    discontinuation_risk_flags: int = 2
    # Seed: 25 mg for 1-3 days to assess tolerability.
    default_induction_days: int = 1
    # Seed: treatment runs 3-12 months; an evaluation date asked for more than a
    # year ahead (``ntx intake evaluate --as-of``) is a typo, not a plan.
    evaluation_max_days_ahead: int = 366


DEFAULT_SETTINGS = IntakeSettings()
