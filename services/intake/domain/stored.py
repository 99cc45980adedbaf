"""The request on file for a patient (the one a re-check evaluates again), stored
as a versioned JSON row: :data:`STORED` loads any row ever written through its
upcasters (DESIGN.md §5 r2). The published request's fields, plus the version."""

from __future__ import annotations

import json
from typing import Any, Literal

from shared.events import IntakeRequested
from shared.stored import VERSION_FIELD, VersionedDocument


class StoredRequest(IntakeRequested):
    """An :class:`IntakeRequested` as stored: the rules take it as the request."""

    #: The stored shape's version: bump it, with an upcaster, when the shape changes.
    schema_version: Literal[2] = 2


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 1 is every row written before documents carried a version: the
    request's data as published. Rows of revision 1 lack ``clinician_override`` and
    ``fentanyl_detected``; their defaults (none, not tested) are what they meant."""
    return doc


STORED = VersionedDocument(StoredRequest, (_v1_to_v2,))


def stored_json(request: IntakeRequested) -> str:
    """The row to store for ``request``, at the current version."""
    return json.dumps({VERSION_FIELD: STORED.version, **request.model_dump(mode="json")})
