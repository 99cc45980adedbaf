"""``ntx demo`` on the real stack: the timeline a new operator reads first. Every
notification the alerts service requests reaches the demo's own receiver, whose
``standardwebhooks`` check verifies its signature, and the notifier's outcome is on
the timeline right after the request it answers (DESIGN.md §9)."""

from __future__ import annotations

import argparse
import re

import pytest

from services.demo import demo

pytestmark = pytest.mark.infra


def test_the_demo_shows_every_notification_delivered_and_verified(capsys):
    assert demo(argparse.Namespace()) == 0
    out = capsys.readouterr().out
    timeline = [line.split() for line in out.splitlines() if re.match(r"^\d{4}-\d\d-\d\d ", line)]
    kinds = [fields[3] for fields in timeline]

    requested = kinds.count("notification.requested")
    delivered = kinds.count("notification.delivered")
    assert requested >= 6 and delivered == requested  # both audiences of every alert
    assert "notification.failed" not in kinds
    assert "alert.raised" in kinds and "alert.escalated" in kinds
    # each delivery follows its request on the timeline, never the other way round
    assert kinds.index("notification.requested") < kinds.index("notification.delivered")
    summary = re.search(r"(\d+) signatures verified \(standardwebhooks\), (\d+) refused", out)
    assert summary is not None and summary.groups() == (str(delivered), "0")
