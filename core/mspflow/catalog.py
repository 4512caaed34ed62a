"""The designer catalog of a tenant: every module with ``available: true|false``, and the palette.

Core groups come first in a fixed order, then integration modules by label. Unavailable modules stay
in the catalog (with ``unavailable_reason``) so steps already placed in a workflow still resolve
their schemas; the palette is the available records only. ``to_json()`` is the contract the CLI
prints with ``--json``::

    {"tenant": str, "records": [{"group_key", "label", "description", "tile_kind", "icon",
     "default_action_id", "available", "unavailable_reason", "actions": [{"id", "version", "label",
     "description", "category", "icon", "side_effectful", "idempotency", "input_schema",
     "output_schema"}]}]}

Many tenants at once: :func:`build_catalogs` yields the same catalogs as :func:`build_catalog` per
tenant, but resolves availability with one statement per resolver family per chunk of tenants, and
:func:`json_lines` prints them one compact JSON object per line (``App.catalogs``)::

    for line in json_lines(build_catalogs(registry, session, ["acme", "globex"])):
        sys.stdout.write(line + "\n")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from mspflow.availability import Availability, core_only, resolve_many, resolve_tenants
from mspflow.modules import Action, Module
from mspflow.registry import Registry

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

CORE_GROUP_ORDER = ("control", "transform", "data", "scheduling", "communication")

CHUNK_SIZE = 1000
"""Tenants per chunk in :func:`build_catalogs`: each chunk is one ``IN (...)`` list, so one statement
per resolver family, and at most this many catalogs are held before they are yielded. Every tenant is
a bound parameter: keep chunks well below SQLite's 32,766 and psycopg's 65,535 parameters per
statement."""


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


def needs_session(registry: Registry) -> bool:
    """Whether some module's resolver needs an ORM Session; when all are the core's own (Core statements
    only), :func:`build_catalog` may be given a plain Connection and the ORM is never imported."""
    return not core_only(registry.resolvers.get(m.availability_key) if m.availability_key else None
                         for m in registry.modules.values())


def build_catalog(registry: Registry, session: Session | Connection, tenant: str) -> Catalog:
    """The catalog of ``tenant``: each resolver runs at most once, shared queries run once.

    ``session`` may be a Core Connection when :func:`needs_session` is False.
    """
    modules = ordered_modules(registry)
    availability = resolve_many(session, tenant, (m.availability_key for m in modules), registry.resolvers)
    records = []
    for m in modules:
        status = availability[m.availability_key]
        records.append(CatalogRecord(m, tuple(registry.actions_of(m)), status.available, status.reason))
    return Catalog(tenant, tuple(records))


class CatalogPlan:
    """What every tenant's catalog shares: the module order, each module's actions, and one record per
    (module, availability), so many catalogs hold references instead of copies."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.modules = ordered_modules(registry)
        self.keys = list(dict.fromkeys(m.availability_key for m in self.modules))
        self._actions = [tuple(registry.actions_of(m)) for m in self.modules]
        self._records: dict[tuple[int, Availability], CatalogRecord] = {}

    def catalogs(self, session: Session, tenants: Sequence[str]) -> list[Catalog]:
        """The catalogs of ``tenants`` (in order; repeats allowed), one statement per resolver family."""
        availability = resolve_tenants(session, tenants, self.keys, self.registry.resolvers)
        columns = [availability[m.availability_key] for m in self.modules]
        return [Catalog(t, tuple(self._record(i, col[t]) for i, col in enumerate(columns))) for t in tenants]

    def _record(self, index: int, status: Availability) -> CatalogRecord:
        record = self._records.get((index, status))
        if record is None:
            record = CatalogRecord(self.modules[index], self._actions[index], status.available, status.reason)
            self._records[(index, status)] = record
        return record


def chunks(items: Iterable[str], size: int = CHUNK_SIZE) -> Iterator[list[str]]:
    """``items`` in lists of at most ``size``, without reading ahead of the current list."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def build_catalogs(registry: Registry, session: Session, tenants: Iterable[str], *,
                   chunk_size: int = CHUNK_SIZE) -> Iterator[Catalog]:
    """The catalog of each of ``tenants``, in order, equal to :func:`build_catalog` for each.

    Streamed a chunk at a time: each chunk of ``chunk_size`` tenants costs one statement per resolver
    family (all RMM modules together one, Teams one, core groups none); resolvers without a batch
    form are still called once per tenant. ``session`` is used throughout; ``App.catalogs`` uses a
    session per chunk instead, so no transaction stays open while the caller consumes catalogs.
    """
    plan = CatalogPlan(registry)
    for chunk in chunks(tenants, chunk_size):
        yield from plan.catalogs(session, chunk)


def json_lines(catalogs: Iterable[Catalog], *, palette: bool = False) -> Iterator[str]:
    """One compact JSON object per catalog (no trailing newline), the :meth:`Catalog.to_json` shape.

    Each line equals ``json.dumps(catalog.to_json(palette=palette), separators=(",", ":"),
    default=str)``; records shared between catalogs (as :func:`build_catalogs` makes them) are
    serialized once.
    """
    cache: dict[int, tuple[CatalogRecord, str]] = {}
    for catalog in catalogs:
        parts = []
        for record in catalog.palette if palette else catalog.records:
            hit = cache.get(id(record))
            if hit is None or hit[0] is not record:
                if len(cache) >= 4096:  # catalogs built one by one share nothing; keep memory bounded
                    cache.clear()
                hit = (record, _dumps(record.to_json()))
                cache[id(record)] = hit
            parts.append(hit[1])
        yield f'{{"tenant":{_dumps(catalog.tenant)},"records":[{",".join(parts)}]}}'


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
