"""The webhook message verifies with the standardwebhooks library, as receivers do."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError

from services.notifier.message import CONTENT_TYPE, check_webhook_id, webhook_body, webhook_headers
from shared.envelope import InvalidEvent, build, parse_envelope
from tests.unit.notifier.helpers import T0, new_secret, request

NID = "7d7c9a4e-2c3b-4c55-9d62-0c7c0f1b9e11"


def envelope():
    raw = build("ntx.notification.requested.v1", request(), source="ntx/alerts", time=T0, id_=NID)
    return parse_envelope(json.dumps(raw).encode())


def test_body_is_the_request_cloudevent_compact_and_stable():
    body = webhook_body(envelope())
    event = json.loads(body)
    assert event["id"] == NID and event["type"] == "ntx.notification.requested.v1"
    assert event["specversion"] == "1.0" and event["subject"] == "pt-0042"
    assert set(event["data"]) == {
        "patient_id",
        "alert_id",
        "alert",
        "severity",
        "audience",
        "offer_naloxone",
    }
    assert "correlationid" not in event  # absent attributes are left out
    assert b" " not in body and webhook_body(envelope()) == body


def test_headers_verify_with_the_library():
    secret = new_secret()
    body = webhook_body(envelope())
    headers = webhook_headers(NID, body, [SecretStr(secret)], datetime.now(UTC))
    assert headers["content-type"] == CONTENT_TYPE and headers["webhook-id"] == NID
    assert Webhook(secret).verify(body, headers)["id"] == NID


def test_both_secrets_sign_during_a_rotation():
    new, old = new_secret(), new_secret()
    body = webhook_body(envelope())
    headers = webhook_headers(NID, body, [SecretStr(new), SecretStr(old)], datetime.now(UTC))
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda body, h: (body.replace(b"critical", b"warning"), h),
        lambda body, h: (body, {**h, "webhook-id": "another"}),
        lambda body, h: (body, {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}),
    ],
)
def test_a_changed_body_id_or_timestamp_fails_verification(spoil):
    secret = new_secret()
    body = webhook_body(envelope())
    headers = webhook_headers(NID, body, [SecretStr(secret)], datetime.now(UTC))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(*spoil(body, headers))


def test_timestamp_is_the_attempts_wall_clock_second():
    at = datetime(2026, 3, 2, 14, 0, 7, 900000, tzinfo=UTC)
    headers = webhook_headers(NID, b"{}", [SecretStr(new_secret())], at)
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))


@pytest.mark.parametrize("bad", ["a.b", "", "x" * 129, "id with space"])
def test_ids_that_cannot_be_signed_safely_are_refused(bad):
    with pytest.raises(InvalidEvent) as err:
        check_webhook_id(bad)
    assert err.value.field == "id"
