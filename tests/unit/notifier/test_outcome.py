"""What an attempt's status means, and Retry-After in both of its forms."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest

from services.notifier.domain.outcome import parse_retry_after, verdict
from tests.unit.notifier.helpers import T0


@pytest.mark.parametrize(
    "status, expected",
    [
        (199, "retry"),
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (300, "retry"),
        (301, "retry"),  # redirects are not followed: a failure, as Standard Webhooks says
        (400, "retry"),
        (401, "retry"),
        (403, "retry"),
        (404, "retry"),
        (409, "retry"),
        (413, "retry"),
        (422, "retry"),
        (429, "retry"),
        (410, "disable"),
        (411, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        ("timeout", "retry"),
        ("connection_error", "retry"),
    ],
)
def test_verdict(status, expected):
    assert verdict(status) == expected


@pytest.mark.parametrize(
    "header, wait",
    [
        (None, None),
        ("", None),
        ("120", timedelta(seconds=120)),
        (" 5 ", timedelta(seconds=5)),
        ("0", timedelta(0)),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        (format_datetime(T0 + timedelta(seconds=30), usegmt=True), timedelta(seconds=30)),
        (format_datetime(T0 - timedelta(hours=1), usegmt=True), timedelta(0)),
        ("Mon, 02 Mar 2026 14:02:00 -0000", timedelta(minutes=2)),
        ("Mon, 02 Mar 2026 15:00:00 +0100", timedelta(0)),
    ],
)
def test_retry_after_seconds_or_http_date(header, wait):
    assert parse_retry_after(header, T0) == wait
