"""Every line logged while a batch is handled carries its trace ids, so a request can
be followed through each service's log (issue 13); lines outside a batch do not."""

from __future__ import annotations

import json
import logging

from shared.logs import JsonFormatter, tracing_ids


def _line(message: str, **extra: object) -> dict:
    record = logging.makeLogRecord({"name": "ntx.test", "msg": message, **extra})
    return json.loads(JsonFormatter("intake").format(record))


def test_lines_inside_a_batch_carry_its_trace_ids_and_outside_none():
    ids = "4bf92f3577b34da6a3ce929d0e0e4736 0af7651916cd43dd8448eb211c80319c"
    with tracing_ids(ids):
        inside = _line("dead letter", field="data.dose_mg")
        with tracing_ids(None):  # a nested part with no traced input
            untraced = _line("loop retry")
    after = _line("relay")
    assert inside["trace_ids"] == ids and inside["field"] == "data.dose_mg"
    assert "trace_ids" not in untraced and "trace_ids" not in after
