"""The gateway's routes on the service's faust web server (aiohttp driver), beside
the operator endpoints: ``POST /fhir`` and ``POST /fhir/{type}`` (FHIR in),
``GET /fhir/metadata`` (the CapabilityStatement), ``GET /cds-services`` and
``POST /cds-services/{id}`` (CDS Hooks). The rules are in
:mod:`services.gateway.accepting` and the domain; this module reads the request
(the body bounded), answers FHIR JSON and counts the answers by status only: no
token, identifier or clinical value is logged or counted."""

from __future__ import annotations

import json
import logging
from typing import Any

from prometheus_client import Counter

from services.gateway import accepting, cds_hooks
from services.gateway.accepting import FHIR_JSON, Answer, Call
from services.gateway.capability import capability_statement
from services.gateway.domain.outcome import Issue
from services.gateway.domain.settings import DEFAULT_SETTINGS
from shared.http_body import read_bounded
from shared.runtime import Runtime

log = logging.getLogger("ntx.gateway")

REQUESTS = Counter(
    "ntx_gateway_requests_total", "Gateway HTTP answers by route and status", ["route", "status"]
)
MAX_BODY = DEFAULT_SETTINGS.max_document_bytes


async def fhir_call(runtime: Runtime, call: Call) -> Answer:
    """One FHIR POST: checked, then translated and written in one unit of work."""
    from services.gateway.service import configured_clients

    checked = accepting.check_call(configured_clients(), call)
    if isinstance(checked, Answer):
        return checked
    _, data = checked
    try:
        answer = await accepting.accept(runtime.unit_of_work, data, call, runtime.clock.now())
    except Exception as exc:  # the database away, or a defect: nothing was written
        log.error("fhir request not handled", extra={"error": type(exc).__name__})
        why = "not handled now (nothing was written); send it again later"
        return accepting.refused(503, [Issue("$", why, "transient")], **{"Retry-After": "5"})
    if answer.written:
        runtime.wake_relay()
    return answer


def add_routes(app: Any, runtime: Runtime) -> None:
    import faust

    def reply(view: Any, route: str, answer: Answer) -> Any:
        REQUESTS.labels(route, str(answer.status)).inc()
        return view.bytes(
            json.dumps(answer.body).encode(),
            content_type=FHIR_JSON if route != "cds" else "application/json",
            status=answer.status,
            headers=answer.headers,
        )

    async def call_of(request: Any, resource_type: str | None) -> Call:
        return Call(
            request.headers.get("Authorization"),
            request.headers.get("Content-Type"),
            resource_type,
            await read_bounded(request.content, MAX_BODY),
        )

    @app.page("/fhir")
    class Fhir(faust.web.View):  # type: ignore[misc]
        async def post(self, request: Any) -> Any:
            return reply(self, "fhir", await fhir_call(runtime, await call_of(request, None)))

    @app.page("/fhir/{resource_type}")
    class FhirType(faust.web.View):  # type: ignore[misc]
        async def get(self, request: Any, resource_type: str) -> Any:
            if resource_type != "metadata":
                not_here = accepting.refused(
                    404, [Issue("$", "NTX serves no FHIR reads", "not-supported")]
                )
                return reply(self, "fhir", not_here)
            return reply(self, "metadata", Answer(200, capability_statement()))

        async def post(self, request: Any, resource_type: str) -> Any:
            call = await call_of(request, resource_type)
            return reply(self, "fhir", await fhir_call(runtime, call))

    @app.page("/cds-services")
    class Discovery(faust.web.View):  # type: ignore[misc]
        async def get(self, request: Any) -> Any:
            return reply(self, "cds", cds_hooks.discovery_answer())

    @app.page("/cds-services/{service_id}")
    class CdsService(faust.web.View):  # type: ignore[misc]
        async def post(self, request: Any, service_id: str) -> Any:
            from services.gateway.service import configured_clients

            call = await call_of(request, None)
            answer = cds_hooks.order_sign_call(
                configured_clients(), service_id, call, runtime.clock.now()
            )
            return reply(self, "cds", answer)
