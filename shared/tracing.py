"""W3C trace context from each cause to its effects (DESIGN.md §3 [r2], §10), with
OpenTelemetry.

Every admitted message is handled in a span of its own: a child of the trace context
it came with (its ``traceparent``/``tracestate`` extensions or headers), or the root
of a new trace. The events its handling emits carry that span's context as
extensions, and so as headers when the outbox publishes them: the same trace id, a
new span id. Events fired by timers have no message as their cause and carry none.

The SDK always makes the spans (so every effect gets its own span id); they are
exported only when the standard ``OTEL_TRACES_EXPORTER`` names an exporter
(``otlp``, configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables, or
``console``). Unset, it means ``none`` here, not the SDK's ``otlp``: nothing leaves a
service unless an operator asks. ``OTEL_TRACES_SAMPLER`` and ``OTEL_SERVICE_NAME``
work as the SDK documents; ``OTEL_SDK_DISABLED=true`` turns spans off, and effects
then carry their cause's context unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.envelope import Envelope

log = logging.getLogger("ntx.tracing")

PROPAGATOR = TraceContextTextMapPropagator()
#: Distinct trace ids named on one log line, at most (a batch may hold hundreds of
#: messages; its lines stay short, and the rest of its trace ids follow on lines of
#: their own).
MAX_LOGGED_TRACES = 32

_provider: TracerProvider | None = None


def configure(service: str) -> None:
    """Make the process's tracer provider once, with the exporters ``OTEL_*`` ask for
    (none by default)."""
    global _provider
    if _provider is not None or _disabled():
        return
    name = os.environ.get("OTEL_SERVICE_NAME") or f"ntx-{service}"
    _provider = TracerProvider(resource=Resource.create({"service.name": name}))
    for exporter in _exporters():
        _provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)


def _disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def _exporters() -> list[SpanExporter]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "none").lower().split(",")
    found: list[SpanExporter] = []
    for name in (n.strip() for n in names):
        if name == "console":
            found.append(ConsoleSpanExporter())
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append(OTLPSpanExporter())
        elif name not in ("", "none"):
            log.warning("unknown trace exporter ignored", extra={"exporter": name})
    return found


def _tracer() -> trace.Tracer:
    configure("ntx")  # a process that did not name itself (tests, tools)
    return trace.get_tracer("ntx")


#: A cause's identity, ``(source, id)``: the idempotency key of DESIGN.md §3.
Cause = tuple[str, str]


def start_handling(service: str, envelopes: Iterable[Envelope]) -> dict[Cause, Span]:
    """One span per message about to be handled, each a child of the context it
    came with."""
    tracer = _tracer()
    spans: dict[Cause, Span] = {}
    for env in envelopes:
        spans[(env.source, env.id)] = tracer.start_span(
            f"{env.type} process",
            context=PROPAGATOR.extract(env.trace_context()),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "cloudevents.event_id": env.id,
                "cloudevents.event_source": env.source,
                "cloudevents.event_type": env.type,
                "ntx.service": service,
            },
        )
    return spans


def end_handling(spans: dict[Cause, Span], failure: BaseException | None = None) -> None:
    for span in spans.values():
        if failure is not None:
            span.set_status(Status(StatusCode.ERROR, type(failure).__name__))
        span.end()


def effect_context(span: Span) -> dict[str, str]:
    """The ``traceparent`` (and ``tracestate``) an effect of ``span``'s message
    carries: the same trace, ``span`` as its parent."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def trace_ids(spans: dict[Cause, Span]) -> list[str]:
    """The distinct trace ids of a batch, for its log lines (no clinical value: ids):
    every one of them, :data:`MAX_LOGGED_TRACES` to a line."""
    ids = list(dict.fromkeys(format(s.get_span_context().trace_id, "032x") for s in spans.values()))
    return [
        " ".join(ids[at : at + MAX_LOGGED_TRACES]) for at in range(0, len(ids), MAX_LOGGED_TRACES)
    ]
