"""The delivery state machine: planning, every transition, and the outcome events."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.notifier.domain.delivery import (
    DELIVERED,
    FAILED,
    Delivery,
    InvalidTransition,
    endpoint_gone,
    outcome_of,
    plan,
    settle,
)
from services.notifier.domain.outcome import AttemptResult
from services.notifier.domain.settings import DEFAULT_SETTINGS as S
from tests.unit.notifier.helpers import T0, endpoint, request

NID = "7d7c9a4e-2c3b-4c55-9d62-0c7c0f1b9e11"
BODY = b'{"specversion":"1.0"}'
LATER = T0 + timedelta(minutes=1)
HIGHEST = lambda low, high: high  # noqa: E731


def pending() -> Delivery:
    deliveries, _ = plan(request(), NID, BODY, [endpoint("pager")], frozenset(), T0)
    return deliveries[0]


def test_a_request_becomes_one_pending_delivery_per_matching_endpoint_due_at_once():
    endpoints = [endpoint("pager"), endpoint("board"), endpoint("sms", audience="patient")]
    deliveries, outcomes = plan(request(), NID, BODY, endpoints, frozenset(), T0)
    assert [d.endpoint for d in deliveries] == ["pager", "board"]
    assert outcomes == []
    first = deliveries[0]
    assert (first.state, first.attempts, first.next_attempt_at, first.accepted_at) == (
        "pending",
        0,
        T0,
        T0,
    )
    assert (first.notification_id, first.alert_id, first.body) == (NID, "a-1", BODY)


def test_no_endpoint_for_the_audience_fails_at_once_and_says_so():
    deliveries, outcomes = plan(
        request(audience="external"), NID, BODY, [endpoint()], frozenset(), T0
    )
    assert deliveries == []
    [outcome] = outcomes
    assert outcome.type == FAILED
    assert outcome.data.model_dump() == {
        "patient_id": "pt-0042",
        "notification_id": NID,
        "alert_id": "a-1",
        "audience": "external",
        "endpoint": None,
        "attempts": 0,
        "status": "no_endpoint",
    }


def test_a_disabled_endpoint_fails_at_once_and_is_recorded():
    deliveries, outcomes = plan(
        request(), NID, BODY, [endpoint("pager"), endpoint("board")], frozenset({"pager"}), T0
    )
    assert [(d.endpoint, d.state) for d in deliveries] == [
        ("pager", "endpoint_disabled"),
        ("board", "pending"),
    ]
    [outcome] = outcomes
    assert (outcome.type, outcome.data.endpoint, outcome.data.status, outcome.data.attempts) == (
        FAILED,
        "pager",
        "endpoint_disabled",
        0,
    )


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_delivers(status):
    settled = settle(pending(), AttemptResult(status), LATER, S)
    d = settled.delivery
    assert (d.state, d.attempts, d.last_status, d.next_attempt_at, d.finished_at) == (
        "delivered",
        1,
        status,
        None,
        LATER,
    )
    assert settled.outcome.type == DELIVERED and not settled.disable_endpoint
    assert settled.outcome.data.status == status and settled.outcome.data.endpoint == "pager"


def test_410_disables_the_endpoint_and_fails_the_delivery():
    settled = settle(pending(), AttemptResult(410), LATER, S)
    assert settled.delivery.state == "endpoint_disabled" and settled.disable_endpoint
    assert (settled.outcome.type, settled.outcome.data.status) == (FAILED, 410)


@pytest.mark.parametrize("status", [500, 503, 429, 404, 301, "timeout", "connection_error"])
def test_a_failed_attempt_with_time_left_stays_pending_and_publishes_nothing(status):
    settled = settle(pending(), AttemptResult(status), LATER, S, draw=HIGHEST)
    d = settled.delivery
    assert (d.state, d.attempts, d.last_status) == ("pending", 1, status)
    assert d.next_attempt_at == LATER + timedelta(seconds=5)
    assert settled.outcome is None and not settled.disable_endpoint


def test_429_waits_for_retry_after():
    settled = settle(pending(), AttemptResult(429, timedelta(seconds=90)), LATER, S, draw=HIGHEST)
    assert settled.delivery.next_attempt_at == LATER + timedelta(seconds=90)


@pytest.mark.parametrize("status", [500, "timeout"])
def test_a_failed_attempt_at_the_horizon_fails_with_its_status(status):
    late = pending()
    at_horizon = T0 + S.give_up_after
    settled = settle(replace(late, attempts=40), AttemptResult(status), at_horizon, S)
    assert settled.delivery.state == "failed"
    data = settled.outcome.data
    assert (settled.outcome.type, data.attempts, data.status) == (FAILED, 41, status)


def test_the_backstop_fails_a_delivery_before_the_horizon():
    settled = settle(replace(pending(), attempts=S.max_attempts - 1), AttemptResult(502), LATER, S)
    assert settled.delivery.state == "failed" and settled.outcome.data.attempts == S.max_attempts


def test_endpoint_gone_fails_a_pending_delivery():
    tried = settle(pending(), AttemptResult(500), LATER, S).delivery
    settled = endpoint_gone(tried, LATER)
    assert settled.delivery.state == "endpoint_disabled"
    assert (settled.outcome.data.attempts, settled.outcome.data.status) == (1, "endpoint_disabled")


@pytest.mark.parametrize("result", [AttemptResult(200), AttemptResult(410)])
def test_a_finished_delivery_never_moves_again(result):
    done = settle(pending(), result, LATER, S).delivery
    with pytest.raises(InvalidTransition):
        settle(done, AttemptResult(200), LATER, S)
    with pytest.raises(InvalidTransition):
        endpoint_gone(done, LATER)


def test_outcome_ids_are_deterministic_and_distinct_per_ending():
    delivered = settle(pending(), AttemptResult(200), LATER, S).delivery
    failed = settle(
        replace(pending(), attempts=S.max_attempts - 1), AttemptResult(500), LATER, S
    ).delivery
    assert outcome_of(delivered).id == outcome_of(delivered).id
    assert outcome_of(delivered).id != outcome_of(failed).id
    other = replace(delivered, endpoint="board")
    assert outcome_of(other).id != outcome_of(delivered).id


def test_outcome_data_carries_ids_and_codes_only():
    outcome = settle(pending(), AttemptResult(200), LATER, S).outcome
    assert set(outcome.data.model_dump()) == {
        "patient_id",
        "notification_id",
        "alert_id",
        "audience",
        "endpoint",
        "attempts",
        "status",
    }
