"""``GET /fhir/metadata``: the ``CapabilityStatement`` of what the gateway accepts
(DESIGN.md §8), built with ``fhir.resources`` so it is valid FHIR R4: the resource
types it translates on their own (``create``), the types it reads only as context
inside a Bundle, ``batch`` and ``transaction`` at the system level, and bearer
security. Nothing is read or searched: NTX takes facts, it does not serve them."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from services.gateway.domain.intake import CONTEXT_ONLY
from services.gateway.domain.translate import INTERPRETERS

#: Read inside an intake Bundle only (besides the types below and CONTEXT_ONLY).
INTAKE_CONTEXT = frozenset({"AllergyIntolerance", "Condition", "Consent"})
SECURITY = (
    "Bearer tokens (RFC 6750), one per client, stored hashed and scoped to the resource"
    " types the client may send; 401 without a known token, 403 outside its scopes. TLS"
    " is terminated by the deployment."
)


@cache
def capability_statement() -> dict[str, Any]:
    own = [_resource(t, "translated on its own to an NTX event") for t in sorted(INTERPRETERS)]
    context = sorted((CONTEXT_ONLY | INTAKE_CONTEXT) - set(INTERPRETERS))
    own += [_resource(t, "read as context inside a Bundle (an intake)") for t in context]
    model = CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": datetime.now(UTC).date().isoformat(),
            "kind": "instance",
            "name": "NTXGateway",
            "title": "NTX integration gateway",
            "software": {"name": "ntx-gateway"},
            "implementation": {"description": "FHIR R4 in; NTX events out (DESIGN.md §8)"},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "application/json"],
            "rest": [
                {
                    "mode": "server",
                    "documentation": "POST a resource to /fhir/{type}, or a Bundle to /fhir",
                    "security": {"description": SECURITY},
                    "resource": own,
                    "interaction": [{"code": "batch"}, {"code": "transaction"}],
                }
            ],
        }
    )
    return model.model_dump(mode="json", exclude_none=True)


def _resource(kind: str, documentation: str) -> dict[str, Any]:
    return {
        "type": kind,
        "documentation": documentation,
        "interaction": [{"code": "create"}],
        "versioning": "versioned",
    }
