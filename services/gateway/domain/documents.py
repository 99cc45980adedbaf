"""What a request holds: one resource, a Bundle (batch, transaction, collection) or a
FHIR Subscriptions notification (R4 Backport IG: a ``history`` Bundle whose first
entry is the ``Parameters`` subscription status; R4B: ``subscription-notification``
with a ``SubscriptionStatus``), flattened to the resources to translate.

A transaction or collection is all or nothing; a batch and a notification are
entry by entry (FHIR's own semantics): good entries are translated, bad ones reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from services.gateway.domain.outcome import Issue, refuse
from services.gateway.domain.resources import Index, Item, idempotency_key
from services.gateway.domain.settings import DEFAULT_SETTINGS, GatewaySettings

Mode = Literal["single", "all_or_nothing", "each_entry"]
STATUS_PROFILES = ("backport-subscription-status",)
NOTIFYING = frozenset({"event-notification", "query-event"})


@dataclass
class Document:
    mode: Mode
    items: list[Item]
    issues: list[Issue] = field(default_factory=list)

    @property
    def index(self) -> Index:
        return Index(self.items)


def document(resource: Any, settings: GatewaySettings = DEFAULT_SETTINGS) -> Document:
    kind = resource.get_resource_type()
    if kind != "Bundle":
        return Document("single", [Item(resource, kind, idempotency_key(resource, None, kind))])
    doc = Document("all_or_nothing", [])
    _unwrap(resource, "Bundle", doc, settings.max_bundle_nesting)
    return doc


def _unwrap(bundle: Any, path: str, doc: Document, levels: int) -> None:
    entries = list(bundle.entry or [])
    if _is_notification(bundle, entries):
        doc.mode = "each_entry"
        if not _notifies(entries[0].resource, f"{path}.entry[0].resource", doc):
            return
        entries = entries[1:]
        start = 1
    elif bundle.type in ("batch", "transaction", "collection"):
        if bundle.type == "batch":
            doc.mode = "each_entry"
        start = 0
    else:
        raise refuse(
            f"{path}.type",
            f"{bundle.type}: NTX takes a resource, a batch, transaction or collection "
            "Bundle, or a subscription notification",
            "not-supported",
        )
    for i, entry in enumerate(entries, start):
        _entry(entry, f"{path}.entry[{i}]", doc, levels)


def _entry(entry, at: str, doc: Document, levels: int) -> None:
    if entry.request is not None and entry.request.method == "DELETE":
        raise refuse(f"{at}.request.method", "NTX cannot retract a fact", "not-supported")
    resource = entry.resource
    if resource is None:
        raise refuse(
            f"{at}.resource",
            "required: NTX does not fetch; send full resources (subscriptions with "
            "content full-resource)",
            "required",
        )
    if resource.get_resource_type() == "Bundle":
        if levels <= 1:
            raise refuse(f"{at}.resource", "Bundles nested too deep", "too-costly")
        _unwrap(resource, f"{at}.resource", doc, levels - 1)
        return
    path = f"{at}.resource"
    doc.items.append(
        Item(resource, path, idempotency_key(resource, entry.fullUrl, path), entry.fullUrl)
    )


def _is_notification(bundle: Any, entries: list) -> bool:
    if bundle.type == "subscription-notification":
        return True
    if bundle.type != "history" or not entries or entries[0].resource is None:
        return False
    status = entries[0].resource
    if status.get_resource_type() == "SubscriptionStatus":
        return True
    profiles = (status.meta.profile or []) if status.meta else []
    return status.get_resource_type() == "Parameters" and any(
        p.split("/")[-1].startswith(STATUS_PROFILES) for p in profiles
    )


def _notifies(status: Any, at: str, doc: Document) -> bool:
    """Whether the notification carries events; a handshake or heartbeat does not,
    and says so (nothing is dropped: there was nothing to translate)."""
    if status.get_resource_type() == "SubscriptionStatus":
        kind = status.type
    else:
        kind = next((p.valueCode for p in status.parameter or [] if p.name == "type"), None)
    if kind in NOTIFYING:
        return True
    doc.issues.append(
        Issue(at, f"a {kind or 'status'} notification: no events", "informational", "information")
    )
    return False
