"""Trace context (shared/tracing.py): a cause's effects carry its trace with a span
of their own; export is off unless the standard OTEL_* variables ask for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from shared import tracing
from shared.envelope import build, parse
from tests.unit.test_events import message, raw

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
AT = datetime(2026, 3, 2, 14, tzinfo=UTC)


def envelope(**added):
    return parse(raw({**message("ntx.dose.administered.v1"), **added})).envelope


def test_an_effect_carries_its_cause_trace_with_a_new_span_and_the_tracestate():
    cause = envelope(traceparent=PARENT, tracestate="vendor=opaque")
    spans = tracing.start_handling("alerts", [cause])
    carried = tracing.effect_context(spans[(cause.source, cause.id)])
    tracing.end_handling(spans)
    version, trace_id, span_id, flags = carried["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id != PARENT.split("-")[2] and span_id != "0" * 16
    assert carried["tracestate"] == "vendor=opaque"
    assert tracing.trace_ids(spans) == [TRACE_ID]


def test_a_batch_of_many_traces_names_every_one_a_bounded_number_to_a_line():
    causes = [envelope(id=f"e-{n}") for n in range(2 * tracing.MAX_LOGGED_TRACES + 5)]
    spans = tracing.start_handling("alerts", causes)
    tracing.end_handling(spans)
    lines = tracing.trace_ids(spans)
    named = [t for line in lines for t in line.split()]
    assert len(lines) == 3 and all(len(ln.split()) <= tracing.MAX_LOGGED_TRACES for ln in lines)
    expected = {format(s.get_span_context().trace_id, "032x") for s in spans.values()}
    assert sorted(named) == sorted(expected) and len(expected) == len(causes)


def test_an_untraced_or_badly_traced_cause_starts_a_trace_of_its_own():
    for cause in (envelope(), envelope(traceparent="not-a-traceparent")):
        spans = tracing.start_handling("alerts", [cause])
        carried = tracing.effect_context(spans[(cause.source, cause.id)])
        tracing.end_handling(spans)
        assert len(carried["traceparent"].split("-")[1]) == 32


def test_an_unsampled_cause_keeps_its_flag_and_still_gets_a_new_span():
    unsampled = PARENT[:-2] + "00"
    cause = envelope(traceparent=unsampled)
    spans = tracing.start_handling("alerts", [cause])
    carried = tracing.effect_context(spans[(cause.source, cause.id)])
    tracing.end_handling(spans)
    _, trace_id, span_id, flags = carried["traceparent"].split("-")
    assert (trace_id, flags) == (TRACE_ID, "00") and span_id != PARENT.split("-")[2]


@pytest.mark.parametrize(
    ("setting", "exporters"),
    [(None, []), ("none", []), ("console", [ConsoleSpanExporter]), ("bogus", [])],
)
def test_export_is_off_unless_otel_traces_exporter_names_one(monkeypatch, setting, exporters):
    if setting is None:
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    else:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", setting)
    assert [type(e) for e in tracing._exporters()] == exporters


def test_otlp_export_is_available_when_asked_for(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    (exporter,) = tracing._exporters()
    assert type(exporter).__name__ == "OTLPSpanExporter"
    exporter.shutdown()


def test_emitted_events_carry_the_trace_as_extensions():
    data = message("ntx.dose.due.v1")["data"]
    assert "traceparent" not in build("ntx.dose.due.v1", data, source="x", time=AT)
    trace = {"traceparent": PARENT}
    traced = build("ntx.dose.due.v1", data, source="x", time=AT, trace=trace)
    assert traced["traceparent"] == PARENT
    assert parse(json.dumps(traced).encode()).envelope.trace_context() == trace
