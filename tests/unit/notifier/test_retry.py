"""The retry schedule: ceilings, jitter bounds, the horizon, Retry-After, the backstop."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.domain.retry import ceiling, deadline, next_attempt_at
from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from tests.unit.notifier.helpers import T0

HIGHEST = lambda low, high: high  # noqa: E731 - the longest wait jitter can draw
LOWEST = lambda low, high: low  # noqa: E731


@pytest.mark.parametrize(
    "attempts, seconds",
    [(1, 5), (2, 20), (3, 80), (4, 320), (5, 1280), (6, 3600), (7, 3600), (99, 3600)],
)
def test_ceiling_grows_by_the_factor_up_to_the_cap(attempts, seconds):
    assert ceiling(S, attempts) == timedelta(seconds=seconds)


@pytest.mark.parametrize("draw, wait", [(HIGHEST, 80), (LOWEST, 0)])
def test_full_jitter_draws_between_zero_and_the_ceiling(draw, wait):
    at = next_attempt_at(S, accepted_at=T0, attempts_made=3, now=T0, draw=draw)
    assert at == T0 + timedelta(seconds=wait)


def test_the_draw_is_asked_for_exactly_that_range():
    asked = []
    next_attempt_at(
        S, accepted_at=T0, attempts_made=2, now=T0, draw=lambda a, b: asked.append((a, b)) or a
    )
    assert asked == [(0.0, 20.0)]


@pytest.mark.parametrize(
    "elapsed, expected",
    [
        (timedelta(hours=24) - timedelta(seconds=1), "at horizon"),
        (timedelta(hours=24), None),
        (timedelta(hours=25), None),
    ],
)
def test_the_horizon_ends_retrying_and_the_last_attempt_is_pulled_in_to_it(elapsed, expected):
    at = next_attempt_at(S, accepted_at=T0, attempts_made=30, now=T0 + elapsed, draw=HIGHEST)
    assert at == (deadline(S, T0) if expected else None)


@pytest.mark.parametrize(
    "attempts, gives_up", [(S.max_attempts - 1, False), (S.max_attempts, True)]
)
def test_the_attempt_backstop(attempts, gives_up):
    at = next_attempt_at(S, accepted_at=T0, attempts_made=attempts, now=T0, draw=LOWEST)
    assert (at is None) is gives_up


@pytest.mark.parametrize(
    "retry_after, draw, wait",
    [
        (timedelta(seconds=120), HIGHEST, 120),  # later than jitter: honoured
        (timedelta(seconds=10), HIGHEST, 80),  # earlier than jitter: jitter stands
        (timedelta(0), LOWEST, 0),
    ],
)
def test_retry_after_is_never_undercut(retry_after, draw, wait):
    at = next_attempt_at(
        S, accepted_at=T0, attempts_made=3, now=T0, retry_after=retry_after, draw=draw
    )
    assert at == T0 + timedelta(seconds=wait)


@pytest.mark.parametrize(
    "retry_after, gives_up",
    [(timedelta(hours=1), False), (timedelta(hours=1, seconds=1), True)],
)
def test_retry_after_past_the_horizon_gives_up_rather_than_ignore_it(retry_after, gives_up):
    now = deadline(S, T0) - timedelta(hours=1)
    at = next_attempt_at(S, accepted_at=T0, attempts_made=5, now=now, retry_after=retry_after)
    assert (at is None) is gives_up


def _schedule(draw) -> list:
    """Attempt times of a delivery that never succeeds."""
    times, attempts = [T0], 1
    while (
        at := next_attempt_at(S, accepted_at=T0, attempts_made=attempts, now=times[-1], draw=draw)
    ) is not None:
        times.append(at)
        attempts += 1
    return times


@given(st.randoms(use_true_random=False))
def test_any_jitter_keeps_the_schedule_ordered_bounded_and_finite(rng):
    times = _schedule(rng.uniform)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(timedelta(0) <= g <= S.retry_cap for g in gaps)
    assert times[-1] <= deadline(S, T0)
    assert len(times) <= S.max_attempts
    # it stops only at the horizon or at the backstop
    assert times[-1] == deadline(S, T0) or len(times) == S.max_attempts


def test_a_day_of_failures_takes_about_fifty_attempts():
    rng = random.Random(16)
    counts = [len(_schedule(rng.uniform)) for _ in range(500)]
    mean = sum(counts) / len(counts)
    assert 40 <= mean <= 60, mean
    assert max(counts) < S.max_attempts
