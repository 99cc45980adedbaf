"""The gateway's limits and waits. None of these is a clinical threshold: they bound
what one request may cost and how long a lone lab result is held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class GatewaySettings:
    # A document larger than this is refused unread: 1,000 full resources of a few
    # KiB each fit, and the HTTP layer can refuse at the same size from the header.
    max_document_bytes: int = 8 * 1024 * 1024
    # Entries of one Bundle (all nesting levels together): the throughput
    # target is 1,000 resources a second, so one request is at most about a second.
    max_bundle_entries: int = 1000
    # JSON nesting: FHIR resources are a dozen levels deep; far deeper is hostile.
    max_json_depth: int = 64
    # A Bundle inside a Bundle (a notification carrying an intake Bundle) once only.
    max_bundle_nesting: int = 2
    # ALT and AST of one panel are resulted minutes to hours apart; a lone result is
    # held this long for its partner and then reported (never dropped silently).
    lone_result_wait: timedelta = timedelta(days=7)


DEFAULT_SETTINGS = GatewaySettings()
