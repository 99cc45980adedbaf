"""What every translation needs of a resource: where it sits in the request (its
FHIRPath), how a resend is recognised (its idempotency key), what its references
point at inside the request, whose it is (the patient's identifiers), and its times.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.gateway.domain.outcome import refuse

#: A patient as the request names them: every (system, value) identifier given.
PatientRef = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Item:
    """One resource of a request: the model, its FHIRPath, its idempotency key."""

    #: a ``fhir.resources`` R4B model; typed loosely since handlers are chosen by
    #: ``resourceType`` at run time and read that type's own elements
    resource: Any
    path: str
    key: str
    full_url: str | None = None

    @property
    def type(self) -> str:
        return self.resource.get_resource_type()

    def at(self, element: str) -> str:
        return f"{self.path}.{element}"


def idempotency_key(resource: Any, full_url: str | None, path: str) -> str:
    """(type, id, meta.versionId) when versioned, else the Bundle entry's fullUrl,
    else (type, id) with a digest of the content: an unversioned resource sent
    again unchanged is the same fact, a corrected one is a new fact."""
    kind, rid = resource.get_resource_type(), resource.id
    version = resource.meta.versionId if resource.meta else None
    if rid and version:
        return f"{kind}/{rid}/_history/{version}"
    if full_url:
        return full_url
    if rid:
        return f"{kind}/{rid}#{content_digest(resource)}"
    raise refuse(
        f"{path}.id",
        "needed (with meta.versionId), or a Bundle entry fullUrl, so a resend is recognised",
        "required",
    )


def content_digest(resource: Any) -> str:
    body = resource.model_dump(mode="json", exclude_none=True)
    body.pop("meta", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class Index:
    """Resolves references inside one request: Bundle entries by fullUrl or
    ``Type/id``, contained resources by ``#id``. Nothing is fetched from outside."""

    def __init__(self, items: Iterable[Item]):
        self.items = list(items)
        self._by_ref: dict[str, Item] = {}
        for item in self.items:
            if item.full_url:
                self._by_ref[item.full_url] = item
            if item.resource.id:
                self._by_ref.setdefault(f"{item.type}/{item.resource.id}", item)

    def resolve(self, reference: str | None, container: Item) -> Item | None:
        if not reference:
            return None
        if reference.startswith("#"):
            return contained(container, reference[1:])
        found = self._by_ref.get(reference)
        if found is None and "/" in reference:  # an absolute URL ending in Type/id
            found = self._by_ref.get("/".join(reference.rstrip("/").split("/")[-2:]))
        return found

    def of_type(self, *kinds: str) -> Iterator[Item]:
        return (i for i in self.items if i.type in kinds)


def contained(container: Item, local_id: str) -> Item | None:
    for i, res in enumerate(getattr(container.resource, "contained", None) or []):
        if res.id == local_id:
            return Item(res, f"{container.path}.contained[{i}]", f"{container.key}#{local_id}")
    return None


def patient_of(item: Item, index: Index, element: str = "subject") -> PatientRef:
    """The identifiers of the patient ``item`` is about. A logical reference
    (``Reference.identifier``), a conditional one (``Patient?identifier=s|v``), or a
    Patient in the same request; never the EHR's own resource id, which means
    nothing outside that server."""
    ref = getattr(item.resource, element, None)
    at = item.at(element)
    if ref is None:
        raise refuse(at, "required: the patient this is about", "required")
    if ref.identifier is not None and ref.identifier.system and ref.identifier.value:
        return frozenset({(ref.identifier.system, ref.identifier.value)})
    reference = ref.reference or ""
    if reference.startswith("Patient?identifier="):
        system, _, value = reference.removeprefix("Patient?identifier=").partition("|")
        if system and value:
            return frozenset({(system, value)})
    target = index.resolve(reference, item)
    if target is None or target.type != "Patient":
        raise refuse(
            at,
            "names no patient NTX can identify: give Reference.identifier (system and "
            "value) or include the Patient in the same Bundle",
            "required",
        )
    return patient_identifiers(target)


def patient_identifiers(patient: Item) -> PatientRef:
    found = frozenset(
        (i.system, i.value)
        for i in patient.resource.identifier or []
        if i.system and i.value and i.use != "old"
    )
    if not found:
        raise refuse(patient.at("identifier"), "required: a system and value", "required")
    return found


def instant(value: Any, at: str) -> datetime:
    """A moment: a FHIR dateTime with a time and an offset. A date alone is not
    turned into a made-up time of day."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if value is None:
        raise refuse(at, "required: a date and time with its offset", "required")
    raise refuse(at, "needs a time of day and offset, not only a date", "value")


def local_day(value: Any, at: str) -> date:
    """A calendar date: a FHIR date, or the date part of a dateTime as written
    (in the offset the sender gave, i.e. the local date where it happens)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None:
        raise refuse(at, "required: a date", "required")
    raise refuse(at, "needs a full date (year, month and day)", "value")


def codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def extension(resource: Any, url: str) -> Any | None:
    for ext in getattr(resource, "extension", None) or []:
        if ext.url == url:
            return ext
    return None
