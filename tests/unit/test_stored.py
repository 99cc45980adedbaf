"""The upcasting chain itself (``shared/stored.py``), on a document that changed
twice: version 1 named the dose ``mg``, version 2 renamed it, version 3 added a unit."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from shared.stored import StoredDocumentError, VersionedDocument


class Dose(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    schema_version: Literal[3] = 3
    dose_mg: Decimal
    unit: str


def _rename(doc: dict) -> dict:
    doc["dose_mg"] = doc.pop("mg")
    return doc


def _unit(doc: dict) -> dict:
    doc.setdefault("unit", "mg")
    return doc


DOSE = VersionedDocument(Dose, (_rename, _unit))


@pytest.mark.parametrize(
    "row",
    [
        {"mg": 50.25},
        {"schema_version": 1, "mg": 50.25},
        {"schema_version": 2, "dose_mg": 50.25},
        {"schema_version": 3, "dose_mg": 50.25, "unit": "mg"},
    ],
)
def test_each_version_is_upcast_from_where_it_is(row):
    assert DOSE.load(json.dumps(row)) == Dose(dose_mg=Decimal("50.25"), unit="mg")


def test_upcasting_keeps_numbers_exact_and_leaves_the_row_alone():
    row = {"mg": Decimal("120.30000000001")}
    assert DOSE.upcast(row) == {"schema_version": 3, "dose_mg": row["mg"], "unit": "mg"}
    assert row == {"mg": Decimal("120.30000000001")}
    loaded = DOSE.load('{"mg": 120.30000000001}')
    assert loaded.dose_mg == Decimal("120.30000000001")


def test_the_current_version_is_the_chain_plus_one():
    assert DOSE.version == 3
    assert VersionedDocument(Dose, ()).version == 1


def test_the_model_still_refuses_what_no_upcaster_explains():
    with pytest.raises(ValueError, match="extra"):
        DOSE.load(json.dumps({"mg": 50, "route": "oral"}))


@pytest.mark.parametrize("raw", ['{"schema_version": 4, "dose_mg": 1, "unit": "mg"}', "[1]"])
def test_rows_from_the_future_or_not_documents_are_refused(raw):
    with pytest.raises(StoredDocumentError):
        DOSE.load(raw)
