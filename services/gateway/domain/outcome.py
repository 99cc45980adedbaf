"""Refusals and notes as FHIR ``OperationOutcome`` issues naming the FHIR path
(FHIRPath-style, ``MedicationAdministration.dosage.dose.value``): a resource whose
meaning NTX cannot determine is refused, never guessed and never dropped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from fhir.resources.R4B.operationoutcome import OperationOutcome

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One ``OperationOutcome.issue``: where (``expression``), what, how bad.
    ``code`` is from the FHIR issue-type value set (invalid, required, value,
    code-invalid, not-supported, too-costly, conflict, business-rule, structure...)."""

    expression: str
    message: str
    code: str = "invalid"
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")

    def line(self) -> str:
        return f"{self.expression}: {self.message}"


class Refused(Exception):
    """Input refused as a whole, with every issue found."""

    def __init__(self, issues: Iterable[Issue]):
        self.issues = list(issues)
        super().__init__("; ".join(i.line() for i in self.issues))


def refuse(expression: str, message: str, code: str = "invalid") -> Refused:
    return Refused([Issue(expression, message, code)])


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """The FHIR R4 JSON of an ``OperationOutcome`` (built through the model, so it is
    valid); an empty list of issues answers "all well" as FHIR requires one issue."""
    listed = [
        {
            "severity": i.severity,
            "code": i.code,
            "diagnostics": i.message,
            "expression": [i.expression],
        }
        for i in issues
    ] or [{"severity": "information", "code": "informational", "diagnostics": "accepted"}]
    model = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": listed})
    return model.model_dump(mode="json", exclude_none=True)
