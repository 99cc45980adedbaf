"""The receivers' verification snippet in docs/RECEIVING_NOTIFICATIONS.md works on
what the notifier sends: verified once, a repeat recognised, a forgery refused."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.notifier.message import webhook_body, webhook_headers
from shared.envelope import build, parse_envelope
from tests.unit.notifier.helpers import T0, new_secret, request

DOC = Path(__file__).parents[3] / "docs" / "RECEIVING_NOTIFICATIONS.md"


@pytest.fixture
def snippet(monkeypatch):
    secret = new_secret()
    monkeypatch.setenv("NTX_WEBHOOK_SECRET", secret)
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 - our own documentation
    return scope["handle"], secret


def signed(secret: str, *, rotated_with: str | None = None):
    raw = build("ntx.notification.requested.v1", request(), source="ntx/alerts", time=T0)
    body = webhook_body(parse_envelope(json.dumps(raw).encode()))
    secrets = [SecretStr(secret)] + ([SecretStr(rotated_with)] if rotated_with else [])
    headers = webhook_headers(raw["id"], body, secrets, datetime.now(UTC))
    return body, {k.title(): v for k, v in headers.items()}  # as a framework may spell them


def test_the_snippet_accepts_a_delivery_then_recognises_its_repeat(snippet, capsys):
    handle, secret = snippet
    body, headers = signed(secret)
    assert handle(body, headers) == 204
    assert handle(body, headers) == 200
    assert capsys.readouterr().out.count("notify care_team overdose_risk critical pt-0042") == 1


def test_the_snippet_refuses_a_forgery_and_another_secret(snippet):
    handle, secret = snippet
    body, headers = signed(secret)
    assert handle(body.replace(b"critical", b"warning"), headers) == 401
    assert handle(*signed(new_secret())) == 401


def test_the_snippet_accepts_either_secret_during_a_rotation(snippet):
    handle, secret = snippet
    assert handle(*signed(new_secret(), rotated_with=secret)) == 204
