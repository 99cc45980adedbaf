"""What every event model shares: the strict base classes, the doses there are, and
the liver measure (DESIGN.md §3)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from shared.types import STRICT, PatientId

#: DESIGN.md §3.3 [r2]: the oral doses there are (seed / Revia label: 25 mg induction,
#: 50 mg daily, 100 mg Mon/Wed and 150 mg Fri); any other oral dose is an input error.
ORAL_DOSES_MG = (25, 50, 100, 150)
#: DESIGN.md §3.3 [r2] / Vivitrol label: the one XR injection is 380 mg IM.
XR_DOSE_MG = 380

OralDoseMg = Literal[25, 50, 100, 150]
XrDoseMg = Literal[380]


class Data(BaseModel):
    """Base of every event's ``data``: strict, and always keyed by the patient."""

    model_config = STRICT
    patient_id: PatientId


class Part(BaseModel):
    model_config = STRICT


def uln_multiple(alt: Decimal, ast: Decimal, alt_uln: Decimal, ast_uln: Decimal) -> Decimal:
    """The higher of ALT/ULN and AST/ULN, exact (Decimal, never float): the measure
    each service compares with its own thresholds."""
    return max(alt / alt_uln, ast / ast_uln)


class LiverPanel:
    """ALT and AST with their upper limits of normal (a screen at intake, a result
    during treatment): :attr:`uln_multiple` is what the rules compare."""

    if TYPE_CHECKING:  # the models declare the fields, each in its own order
        alt: Decimal
        ast: Decimal
        alt_uln: Decimal
        ast_uln: Decimal

    @property
    def uln_multiple(self) -> Decimal:
        return uln_multiple(self.alt, self.ast, self.alt_uln, self.ast_uln)
