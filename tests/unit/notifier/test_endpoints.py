"""Endpoint validation, routing, and that neither a secret nor a URL is ever shown."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from services.notifier.domain.endpoints import endpoints_for
from tests.unit.notifier.helpers import endpoint, new_secret


def _raw_secret(n: int) -> str:
    return "whsec_" + base64.b64encode(os.urandom(n)).decode()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "Care Team"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"audience": "family"}, "audience"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "/relative"}, "url"),
        ({"url": "https://hooks.example.org/" + "a" * 2048}, "url"),
        ({"url": "https://user:pw@hooks.example.org/x"}, "url"),
        ({"url": "http://hooks.example.org/x"}, None),  # https required off loopback
        ({"secret": _raw_secret(23)}, "secret"),
        ({"secret": _raw_secret(65)}, "secret"),
        ({"secret": "whsec_not*base64"}, "secret"),
        ({"previous_secret": _raw_secret(8)}, "previous_secret"),
        ({"ack_token_sha256": "abc"}, "ack_token_sha256"),
        ({"timeout_s": 30.5}, "timeout_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"alerts": ["Overdose Risk"]}, "alerts"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_endpoints_name_the_field(change, field):
    with pytest.raises(ValidationError) as err:
        endpoint(**change)
    locs = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert any(loc.startswith(field) for loc in locs) if field else "url:" in str(err.value)


@pytest.mark.parametrize(
    "change",
    [
        {"secret": _raw_secret(24)},
        {"secret": _raw_secret(64)},
        {"secret": _raw_secret(32).removeprefix("whsec_")},  # the prefix is optional
        {"secret": _raw_secret(32).rstrip("=")},  # unpadded base64
        {"timeout_s": 30},
        {"url": "http://localhost:8080/x"},
        {"url": "http://[::1]:8080/x"},
        {"url": "http://hooks.internal/x", "insecure_http": True},
        {"url": "https://hooks.example.org/x?token=abc"},
    ],
)
def test_valid_endpoints(change):
    endpoint(**change)


def test_errors_never_echo_a_secret_or_a_url():
    secret = new_secret(8)
    with pytest.raises(ValidationError) as err:
        endpoint(secret=secret, url="http://hooks.example.org/?token=SEEKRIT")
    assert secret not in str(err.value) and "SEEKRIT" not in str(err.value)


def test_a_dump_hides_them_too():
    e = endpoint(url="https://h.example.org/?t=TOKEN")
    assert "TOKEN" not in str(e.model_dump()) and "TOKEN" not in e.model_dump_json()
    assert e.url.get_secret_value() == "https://h.example.org/?t=TOKEN"


def test_repr_and_str_show_neither_secret_nor_url():
    secret = new_secret()
    e = endpoint(secret=secret, previous_secret=new_secret(), url="https://h.example.org/?t=TOKEN")
    for shown in (repr(e), str(e), f"{e}", repr([e])):
        assert secret not in shown and "TOKEN" not in shown and "h.example.org" not in shown
    assert e.secrets()[0].get_secret_value() == secret and len(e.secrets()) == 2


def test_routing_by_audience_and_alert_code():
    pager = endpoint("pager", alerts=["overdose_risk"])
    board = endpoint("board")
    sms = endpoint("sms", audience="patient")
    every = [pager, board, sms]
    assert endpoints_for(every, "care_team", "overdose_risk") == [pager, board]
    assert endpoints_for(every, "care_team", "missed_dose") == [board]
    assert endpoints_for(every, "patient", "missed_dose") == [sms]
    assert endpoints_for(every, "external", "overdose_risk") == []
