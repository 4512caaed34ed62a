"""Availability faults: resolvers that raise, exit, answer nonsense or read a missing table make their
module unavailable — in the catalog, in every tenant's catalog and at execute time — and never escape."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import text

from mspflow.app import App
from mspflow.db.engine import Database
from mspflow.hookspecs import hookimpl
from mspflow.modules import Module
from mspflow.plugins import Plugins
from tests.reliability.conftest import Figures


@dataclass(frozen=True)
class Faulty:
    key: str
    how: str

    def __call__(self, session: Any, tenant_id: str) -> Any:
        if self.how == "raise":
            raise RuntimeError("resolver bug")
        if self.how == "exit":
            sys.exit(4)
        if self.how == "nonsense":
            return "yes"
        if self.how == "missing_table":
            return session.execute(text("SELECT 1 FROM no_such_table")).scalar()
        if self.how == "recursion":
            return self(session, tenant_id)
        raise AssertionError(self.how)


class In(BaseModel):
    x: int = 0


class Out(BaseModel):
    x: int


HOWS = ("raise", "exit", "nonsense", "missing_table", "recursion")


def _plugin() -> Any:
    modules = []
    for how in HOWS:
        m = Module(f"app:faulty_{how}", label=f"Faulty {how}", availability=Faulty(f"faulty:{how}", how),
                   description="Fails to say.")

        def handler(params: In, ctx: Any) -> Out:
            """Echo."""
            return Out(x=params.x)

        m.action(f"faulty_{how}.things.get", label="Get")(handler)
        modules.append(m)

    class Plugin:
        @hookimpl
        def register_modules(self, register: Any) -> None:
            for m in modules:
                register(m)

    return Plugin()


def test_availability_faults(db: Database, figures: Figures) -> None:
    app = App(db=db, plugins=Plugins(entry_points=[], extra=[("faulty", _plugin())], strict=True))
    escaped: list[str] = []
    unavailable = 0
    checks = 0
    try:
        for catalog in [app.catalog("t1"), *app.catalogs(["t1", "t2"])]:
            for how in HOWS:
                record = catalog.record(f"app:faulty_{how}")
                checks += 1
                unavailable += bool(record and not record.available and record.unavailable_reason)
        for how in HOWS:
            result = app.execute(f"faulty_{how}.things.get", tenant="t1", input={})
            checks += 1
            unavailable += bool(not result.ok and result.error and result.error.code == "INTEGRATION_INACTIVE")
    except BaseException as exc:
        escaped.append(f"{type(exc).__name__}: {exc}")
    ok = figures.record(f"availability faults ({db.dialect})",
                        f"{len(HOWS)} faulty resolvers, {checks} checks: {unavailable} unavailable with a reason, "
                        f"{len(escaped)} escaped", unavailable == checks and not escaped)
    assert ok, escaped
