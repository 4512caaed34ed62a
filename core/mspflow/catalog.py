"""The designer catalog of a tenant: every module with ``available: true|false``, and the palette.

Core groups come first in a fixed order, then integration modules by label. Unavailable modules stay
in the catalog (with ``unavailable_reason``) so steps already placed in a workflow still resolve
their schemas; the palette is the available records only. ``to_json()`` is the contract the CLI
prints with ``--json``::

    {"tenant": str, "records": [{"group_key", "label", "description", "tile_kind", "icon",
     "default_action_id", "available", "unavailable_reason", "actions": [{"id", "version", "label",
     "description", "category", "icon", "side_effectful", "idempotency", "input_schema",
     "output_schema"}]}]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mspflow.availability import resolve_many
from mspflow.modules import Action, Module
from mspflow.registry import Registry

CORE_GROUP_ORDER = ("control", "transform", "data", "scheduling", "communication")


def action_record(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "version": action.version,
        "label": action.label,
        "description": action.description,
        "category": action.category,
        "icon": action.icon,
        "side_effectful": action.side_effectful,
        "idempotency": action.idempotency,
        "input_schema": action.input_schema,
        "output_schema": action.output_schema,
    }


@dataclass(frozen=True)
class CatalogRecord:
    module: Module
    actions: tuple[Action, ...]
    available: bool
    unavailable_reason: str | None

    def to_json(self) -> dict[str, Any]:
        m = self.module
        return {
            "group_key": m.group_key,
            "label": m.label,
            "description": m.description,
            "tile_kind": m.tile_kind,
            "icon": m.icon,
            "default_action_id": m.effective_default_action_id,
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
            "actions": [action_record(a) for a in self.actions],
        }


@dataclass(frozen=True)
class Catalog:
    tenant: str
    records: tuple[CatalogRecord, ...]

    @property
    def palette(self) -> tuple[CatalogRecord, ...]:
        """The tiles the tenant may drag onto the canvas (available records only)."""
        return tuple(r for r in self.records if r.available)

    def record(self, group_key: str) -> CatalogRecord | None:
        return next((r for r in self.records if r.module.group_key == group_key), None)

    def to_json(self, *, palette: bool = False) -> dict[str, Any]:
        records = self.palette if palette else self.records
        return {"tenant": self.tenant, "records": [r.to_json() for r in records]}


def ordered_modules(registry: Registry) -> list[Module]:
    """Core groups in :data:`CORE_GROUP_ORDER` (unknown core groups after, by key), then apps by label."""
    rank = {key: i for i, key in enumerate(CORE_GROUP_ORDER)}

    def sort_key(m: Module) -> tuple[int, int, str, str]:
        if m.tile_kind == "core":
            return (0, rank.get(m.group_key, len(rank)), m.group_key, "")
        return (1, 0, m.label.casefold(), m.group_key)

    return sorted(registry.modules.values(), key=sort_key)


def build_catalog(registry: Registry, session: Session, tenant: str) -> Catalog:
    """The catalog of ``tenant``: each resolver runs at most once, shared queries run once."""
    modules = ordered_modules(registry)
    availability = resolve_many(session, tenant, (m.availability_key for m in modules), registry.resolvers)
    records = []
    for m in modules:
        status = availability[m.availability_key]
        records.append(CatalogRecord(m, tuple(registry.actions_of(m)), status.available, status.reason))
    return Catalog(tenant, tuple(records))
