"""mspflow-psa: the reference PSA's business operations as workflow actions (tile "Business Operations").

Tickets, clients, contacts, email, in-app notifications, time entries, activity notes and project tasks, on
the reference schema the core's migrations create, read and written through ``ctx.records`` (tenant-scoped,
in the call's transaction). Every action declares a permission and writes an ``audit_log`` entry.

**The contract for hosts.** The action ids and their input/output schemas are stable (version 1). A host
that owns tickets does not install this distribution: it registers its own plugin with the same ids and
schemas, and runs ``mspflow.testing.psa.TicketsConformance`` against it. The alert pipeline, workflows and
demos reach tickets only through these ids.
"""

from __future__ import annotations

from mspflow import hookimpl

from . import comms, people, tickets, work  # noqa: F401  (actions register on the tile when imported)
from .base import psa

__all__ = ["psa"]


@hookimpl
def register_modules(register):  # type: ignore[no-untyped-def]
    register(psa)
