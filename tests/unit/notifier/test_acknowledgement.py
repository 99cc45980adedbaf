"""Acknowledgements from receivers: the token, the request, the event it becomes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from services.notifier.domain.acknowledgement import (
    AckRefused,
    acknowledge,
    authenticate,
    new_token,
    parse_request,
    token_digest,
)
from services.notifier.domain.delivery import plan
from shared.envelope import parse
from shared.topics import CLINICAL_EVENTS
from tests.unit.notifier.helpers import T0, endpoint, request

SCHEMA = Path(__file__).parents[3] / "docs" / "schemas" / "ntx.alert.acknowledged.v1.json"
TOKEN, DIGEST = new_token()
PAGER = endpoint("pager", ack_token_sha256=DIGEST)
BOARD = endpoint("board", ack_token_sha256=new_token()[1])
SENT, _ = plan(request(alert_id="a-9"), "n-1", b"{}", [PAGER, BOARD], frozenset(), T0)


def test_tokens_are_random_and_only_their_digest_is_kept():
    token, digest = new_token()
    assert token.startswith("ntxack_") and len(token) > 40
    assert digest == token_digest(token) and token not in digest
    assert new_token()[0] != token


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_known_token_authenticates_its_endpoint(scheme):
    assert authenticate([BOARD, PAGER], f"{scheme} {TOKEN}") is PAGER


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ntxack_guess",
        f"Bearer {DIGEST}",
    ],
)
def test_anything_else_is_401(header):
    with pytest.raises(AckRefused) as err:
        authenticate([PAGER, BOARD], header)
    assert (err.value.status, err.value.field) == (401, "authorization")


def test_only_care_team_endpoints_may_hold_a_token():
    with pytest.raises(ValidationError, match="ack_token_sha256"):
        endpoint("sms", audience="patient", ack_token_sha256=DIGEST)


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"by": "rn-17"}', "alert_id"),
        (b'{"alert_id": "a-9"}', "by"),
        (b'{"alert_id": "a-9", "by": "Jane Doe"}', "by"),
        (b'{"alert_id": "", "by": "rn-17"}', "alert_id"),
        (b'{"alert_id": 9, "by": "rn-17"}', "alert_id"),
        (b'{"alert_id": "a-9", "by": "rn-17", "note": "x"}', "note"),
        (b'{"alert_id": "a-9", "by": ', "body"),
        (b"[]", "body"),
    ],
)
def test_a_bad_request_is_400_naming_the_field(body, field):
    with pytest.raises(AckRefused) as err:
        parse_request(body)
    assert err.value.status == 400 and err.value.field == field


def test_an_oversize_request_is_refused_unread():
    with pytest.raises(AckRefused) as err:
        parse_request(b'{"alert_id": "' + b"a" * 5000 + b'", "by": "rn-17"}')
    assert (err.value.status, err.value.field) == (413, "body")


def test_an_acknowledgement_becomes_alert_acknowledged_with_that_alert_id():
    req = parse_request(b'{"alert_id": "a-9", "by": "rn-17"}')
    event = acknowledge(req, PAGER, SENT, T0)
    parsed = parse(json.dumps(event).encode(), expected_topic=CLINICAL_EVENTS.name, key=b"pt-0042")
    assert parsed.type == "ntx.alert.acknowledged.v1"
    assert parsed.data.model_dump() == {
        "patient_id": "pt-0042",
        "alert": "overdose_risk",
        "alert_id": "a-9",
        "by": "rn-17",
    }
    assert event["source"] == "ntx/notifier" and event["causationid"] == "n-1"
    jsonschema.validate(event, json.loads(SCHEMA.read_text()))


def test_a_repeated_call_is_the_same_event_and_another_person_another():
    req = parse_request(b'{"alert_id": "a-9", "by": "rn-17"}')
    other = parse_request(b'{"alert_id": "a-9", "by": "md-2"}')
    assert acknowledge(req, PAGER, SENT, T0)["id"] == acknowledge(req, PAGER, SENT, T0)["id"]
    assert acknowledge(req, PAGER, SENT, T0)["id"] != acknowledge(other, PAGER, SENT, T0)["id"]


@pytest.mark.parametrize(
    "alert_id, sent_to",
    [("a-unknown", [PAGER]), ("a-9", [BOARD])],  # unknown alert; an alert sent elsewhere only
)
def test_an_alert_not_sent_to_this_endpoint_is_not_found(alert_id, sent_to):
    deliveries, _ = plan(request(alert_id="a-9"), "n-1", b"{}", sent_to, frozenset(), T0)
    req = parse_request(json.dumps({"alert_id": alert_id, "by": "rn-17"}).encode())
    with pytest.raises(AckRefused) as err:
        acknowledge(req, PAGER, deliveries, T0)
    assert (err.value.status, err.value.field) == (404, "alert_id")
