"""``POST /acknowledgements`` on the notifier's HTTP server (``NTX_HTTP_BIND``): a
receiver acknowledges an alert it was notified of (DESIGN.md §9,
docs/RECEIVING_NOTIFICATIONS.md). The rules are in
:mod:`services.notifier.domain.acknowledgement`; this module reads the call and
writes the ``alert.acknowledged`` event to the outbox in one transaction, so an
answered 202 is never lost.
"""

from __future__ import annotations

from typing import Any

from services.notifier.domain.acknowledgement import (
    MAX_BODY_BYTES,
    AckRefused,
    acknowledge,
    authenticate,
    parse_request,
)
from shared.http_body import read_bounded
from shared.runtime import Runtime

PATH = "/acknowledgements"


async def acknowledge_call(
    runtime: Runtime, authorization: str | None, body: bytes
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON answer for one call; refusals name the field."""
    from services.notifier.service import configured, deliveries

    try:
        endpoint = authenticate(configured().endpoints, authorization)
        request = parse_request(body)
        async with runtime.unit_of_work(runtime.clock.now()) as uow:
            repo = deliveries(uow)
            event = acknowledge(request, endpoint, await repo.for_alert(request.alert_id), uow.now)
            uow.events.append(event)
    except AckRefused as refused:
        return refused.status, {"error": refused.message, "field": refused.field}
    runtime.wake_relay()
    return 202, {"accepted": event["id"], "alert_id": request.alert_id}


def add_routes(app: Any, runtime: Runtime) -> None:
    """The route on the service's faust web server (aiohttp driver)."""
    import faust

    @app.page(PATH)
    class Acknowledgements(faust.web.View):  # type: ignore[misc]
        async def post(self, request: Any) -> Any:
            if (request.content_length or 0) > MAX_BODY_BYTES:
                status, answer = (
                    413,
                    {"error": f"larger than {MAX_BODY_BYTES} bytes", "field": "body"},
                )
            else:
                body = await read_bounded(request.content, MAX_BODY_BYTES)
                status, answer = await acknowledge_call(
                    runtime, request.headers.get("Authorization"), body
                )
            return self.json(answer, status=status)
