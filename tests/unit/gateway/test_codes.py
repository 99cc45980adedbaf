"""Every code table entry both ways round: the coding means its meaning, and the
meaning lists the coding; unknown codes mean nothing; every table names its source."""

from __future__ import annotations

import pytest

from services.gateway.domain import codes
from shared.events import Condition, Opioid

ENTRIES = [(name, e) for name in codes.TABLES for e in codes.table(name).entries]


@pytest.mark.parametrize("name, entry", ENTRIES, ids=lambda v: getattr(v, "code", v))
def test_each_coding_means_its_meaning_and_back(name, entry):
    table = codes.table(name)
    assert table.meaning(entry.system, entry.code) == entry.meaning
    assert {"system": entry.system, "code": entry.code, "display": entry.display} in table.codings(
        entry.meaning
    )


@pytest.mark.parametrize("name", codes.TABLES)
def test_every_table_names_its_source_and_knows_no_stranger(name):
    table = codes.table(name)
    assert len(table.source) > 40 and table.title
    assert table.meaning("http://example.org/unknown", "12345") is None
    assert table.meaning(table.entries[0].system, "no-such-code") is None


def test_meanings_are_exactly_the_design_vocabularies():
    assert codes.opioids().meanings() <= set(Opioid.__args__)
    assert codes.conditions().meanings() | {"naltrexone_hypersensitivity"} == set(
        Condition.__args__
    )
    assert codes.naltrexone().meanings() == {"oral", "xr", "ingredient"}
    assert codes.lab_tests().meanings() == {"alt", "ast", "opiates", "fentanyl"}
    assert codes.routes().meanings() == {"oral", "intramuscular"}
    assert codes.results().meanings() == {"true", "false"}
    assert codes.not_given_reasons().meanings() == {
        "patient_refused",
        "patient_absent",
        "clinical_hold",
        "supply",
        "other",
    }


def test_design_codes_are_where_design_says():
    assert codes.lab_tests().meaning(codes.LOINC, "1742-6") == "alt"
    assert codes.lab_tests().meaning(codes.LOINC, "1920-8") == "ast"
    assert codes.naltrexone().meaning(codes.RXNORM, "637213") == "xr"
    assert codes.naltrexone().meaning(codes.RXNORM, "1483744") == "oral"


@pytest.mark.parametrize(
    "code, meaning",
    [
        ("B17.10", "acute_hepatitis"),
        ("B1710", "acute_hepatitis"),
        ("K72.90", "liver_failure"),
        ("F10.20", "alcohol_use_disorder"),
        ("F32.A", "depression"),
        ("F10.90", None),
        ("B18.2", None),
        ("Z79.899", None),
    ],
)
def test_icd10_categories_cover_their_codes_and_no_others(code, meaning):
    assert codes.conditions().meaning("http://hl7.org/fhir/sid/icd-10-cm", code) == meaning


def test_same_code_in_another_system_means_nothing():
    assert codes.lab_tests().meaning("http://snomed.info/sct", "1742-6") is None
