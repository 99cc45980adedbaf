"""The gateway's code tables (``services/gateway/codes/*.json``), read once: what a
coding means to NTX, and the codings that mean a thing (the way back, for tests,
examples and the CDS discovery document)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

#: Canonical base of NTX's own code systems and extensions (codes/README.md).
NTX_FHIR = "https://ntx.example.org/fhir"
REQUIRES_OPIOID_ANALGESIA = f"{NTX_FHIR}/StructureDefinition/requires-opioid-analgesia"
CLINICIAN_OVERRIDE = f"{NTX_FHIR}/StructureDefinition/clinician-override"
#: FHIR's IANA time zone extension: ``tz-code`` in R4, renamed ``timezone`` in R5.
TIMEZONE_EXTENSIONS = (
    "http://hl7.org/fhir/StructureDefinition/tz-code",
    "http://hl7.org/fhir/StructureDefinition/timezone",
)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Entry:
    system: str
    code: str
    display: str
    meaning: str
    prefix: bool = False

    def matches(self, system: str | None, code: str | None) -> bool:
        if system != self.system or not code:
            return False
        # an ICD-10-CM category covers every code under it (with or without the dot)
        return (
            code.replace(".", "").startswith(self.code.replace(".", ""))
            if self.prefix
            else code == self.code
        )


@dataclass(frozen=True)
class CodeTable:
    name: str
    title: str
    source: str
    entries: tuple[Entry, ...]

    def meaning(self, system: str | None, code: str | None) -> str | None:
        """What ``system|code`` means, or None when the table does not know it."""
        for entry in self.entries:
            if entry.matches(system, code):
                return entry.meaning
        return None

    def meaning_of_any(self, codings: Iterable[Any]) -> str | None:
        """The meaning of the first known coding of a CodeableConcept's codings."""
        for coding in codings:
            found = self.meaning(coding.system, coding.code)
            if found is not None:
                return found
        return None

    def codings(self, meaning: str) -> list[dict[str, str]]:
        """Every coding that means ``meaning`` (the way back)."""
        return [
            {"system": e.system, "code": e.code, "display": e.display}
            for e in self.entries
            if e.meaning == meaning
        ]

    def meanings(self) -> set[str]:
        return {e.meaning for e in self.entries}


@cache
def table(name: str) -> CodeTable:
    raw = json.loads(
        resources.files("services.gateway").joinpath("codes", f"{name}.json").read_text()
    )
    entries = tuple(
        Entry(e["system"], e["code"], e["display"], e["meaning"], e.get("match") == "prefix")
        for e in raw["entries"]
    )
    return CodeTable(name, raw["title"], raw["source"], entries)


TABLES = (
    "naltrexone",
    "opioids",
    "lab_tests",
    "conditions",
    "routes",
    "results",
    "not_given_reasons",
    "ntx_codes",
)


def naltrexone() -> CodeTable:
    return table("naltrexone")


def opioids() -> CodeTable:
    return table("opioids")


def lab_tests() -> CodeTable:
    return table("lab_tests")


def conditions() -> CodeTable:
    return table("conditions")


def routes() -> CodeTable:
    return table("routes")


def results() -> CodeTable:
    return table("results")


def not_given_reasons() -> CodeTable:
    return table("not_given_reasons")


def ntx_codes() -> CodeTable:
    return table("ntx_codes")
