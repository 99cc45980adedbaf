"""Stored documents with a schema version, upcast on load (eventsourcing's pattern):
each change of a stored shape bumps its version and adds one upcaster from the
version before, so every row ever written still loads (DESIGN.md §5 r2).

A row without ``schema_version`` was written before documents carried one: it is
version 1. Upcasters work on the parsed JSON (numbers kept exact as ``Decimal``); the
model then validates the current shape, strictly as it always did."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import pydantic_core
from pydantic import BaseModel

VERSION_FIELD = "schema_version"

Document = dict[str, Any]
Upcaster = Callable[[Document], Document]
M = TypeVar("M", bound=BaseModel)


class StoredDocumentError(ValueError):
    """A stored row no upcaster can bring to the current version."""


@dataclass(frozen=True)
class VersionedDocument(Generic[M]):
    """``upcasters[0]`` turns version 1 into 2, ``upcasters[1]`` 2 into 3, and so on;
    the model's own ``schema_version`` is the last of them plus one."""

    model: type[M]
    upcasters: tuple[Upcaster, ...]

    @property
    def version(self) -> int:
        return len(self.upcasters) + 1

    def upcast(self, doc: Document) -> Document:
        """``doc`` (not changed) brought to the current version."""
        found = doc.get(VERSION_FIELD, 1)
        if type(found) is not int or not 1 <= found <= self.version:
            raise StoredDocumentError(
                f"{self.model.__name__}: {VERSION_FIELD} {found!r} is not one of 1..{self.version}"
            )
        for n, upcaster in enumerate(self.upcasters[found - 1 :], start=found + 1):
            doc = {**upcaster(dict(doc)), VERSION_FIELD: n}
        return doc

    def load(self, raw: str | bytes) -> M:
        """A stored row as the current model; current rows are validated as they are."""
        doc = json.loads(raw, parse_float=Decimal)
        if not isinstance(doc, dict):
            raise StoredDocumentError(f"{self.model.__name__}: not a JSON object")
        found = doc.get(VERSION_FIELD)
        if type(found) is int and found == self.version:
            return self.model.model_validate_json(raw)
        return self.model.model_validate_json(pydantic_core.to_json(self.upcast(doc)))
