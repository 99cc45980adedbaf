"""Deterministic event ids: pure, so the rules that derive them (alert transitions,
due items, decisions) need nothing of the envelope or the broker."""

from __future__ import annotations

import uuid


def stable_id(*parts: str) -> str:
    """A deterministic UUID for an event derived from its cause, so a replay re-emits
    the same ``source``+``id`` and downstream inboxes drop the repeat."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "ntx:" + ":".join(parts)))
