"""What is installed and what a tenant may use: ``plugins``, ``actions``, ``describe``, ``catalog``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mspflow.cli import app
from mspflow.cli._output import JsonOpt, console, db_guard, fail, load, note, print_json, table

if TYPE_CHECKING:
    from mspflow.app import App


@app.command("plugins")
def plugins_cmd(as_json: JsonOpt = False) -> None:
    """Installed plugins: distribution, version, modules, action count, load errors."""
    from mspflow.plugins import Plugins

    loaded = Plugins(strict=False)
    data: dict[str, list[dict[str, Any]]] = {
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version, "builtin": p.builtin,
             "modules": p.modules, "action_count": p.action_count}
            for p in loaded.loaded
        ],
        "load_errors": [
            {"distribution": e.distribution, "version": e.version, "entry_point": e.entry_point,
             "error": e.error}
            for e in loaded.errors
        ],
    }
    if as_json:
        print_json(data)
    else:
        out = table("plugin", "distribution", "version", "modules", "actions", title="Plugins")
        for p in data["plugins"]:
            name = f"{p['name']} (built-in)" if p["builtin"] else p["name"]
            out.add_row(name, p["distribution"], p["version"], ", ".join(p["modules"]) or "-",
                        str(p["action_count"]))
        screen = console()
        screen.print(out)
        if not [p for p in data["plugins"] if not p["builtin"]]:
            screen.print("No integration plugins installed. Install one, e.g. "
                         "[bold]pip install mspflow-ninjaone[/bold] (or a local plugins/<vendor> folder).")
        for e in data["load_errors"]:
            screen.print(f"[red]load error[/red] {e['distribution']} {e['version']} "
                         f"({e['entry_point']}): {e['error']}", highlight=False)
    if loaded.errors:
        raise typer.Exit(1)


@app.command("actions")
def actions_cmd(
    module: Annotated[str | None, typer.Option("--module", help="Only this module's group key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered actions (every version), optionally of one module."""
    registry = load(as_json).registry
    if module is not None:
        mod = registry.modules.get(module)
        if mod is None:
            fail(f"no module {module!r}; known: {', '.join(sorted(registry.modules))}", as_json=as_json,
                 code="NOT_FOUND")
        actions = registry.actions_of(mod)
    else:
        actions = sorted(registry.actions.values(), key=lambda a: (a.id, a.version))
    rows: list[dict[str, Any]] = [
        {"id": a.id, "version": a.version, "label": a.label, "category": a.category,
         "module": (m.group_key if (m := registry.module_of(a.id)) else None),
         "side_effectful": a.side_effectful, "idempotency": a.idempotency, "permission": a.permission}
        for a in actions
    ]
    if as_json:
        print_json({"actions": rows})
        return
    out = table("id", "v", "label", "module", "side effect", title="Actions", ids=("id", "module"))
    for r in rows:
        out.add_row(r["id"], str(r["version"]), r["label"], r["module"] or "-",
                    "yes" if r["side_effectful"] else "no")
    console().print(out)


@app.command("describe")
def describe_cmd(
    action_id: Annotated[str, typer.Argument(help="e.g. transform.text.render")],
    version: Annotated[int | None, typer.Option(help="Version (default: latest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One action: metadata and its input/output JSON Schemas."""
    from mspflow.catalog import action_record

    registry = load(as_json).registry
    action = registry.action(action_id, version)
    if action is None:
        known = sorted({a.id for a in registry.actions.values()})
        hint = f"; known actions: {', '.join(known)}" if len(known) <= 30 else "; see `mspflow actions`"
        fail(f"no action {action_id!r}{f' version {version}' if version else ''}{hint}", as_json=as_json,
             code="NOT_FOUND")
    record = action_record(action)
    module = registry.module_of(action.id)
    record["module"] = module.group_key if module else None
    record["permission"] = action.permission
    if as_json:
        print_json(record)
        return
    screen = console()
    screen.print(f"[bold]{action.id}[/bold] v{action.version} — {action.label}")
    if action.description:
        screen.print(action.description)
    screen.print(f"module: {record['module'] or '-'}   category: {action.category}   "
                 f"side effect: {'yes' if action.side_effectful else 'no'}   "
                 f"idempotency: {action.idempotency}   permission: {action.permission or '-'}")
    screen.print("input schema:")
    screen.print_json(data=action.input_schema)
    screen.print("output schema:")
    screen.print_json(data=action.output_schema)


# -- catalog -------------------------------------------------------------------------------------------


def catalog_table(data: dict[str, Any], palette: bool) -> Any:
    """The table of a catalog in its JSON shape (:meth:`mspflow.catalog.Catalog.to_json`)."""
    title = f"{'Palette' if palette else 'Catalog'} for tenant {data['tenant']}"
    out = table("group", "tile", "kind", "available", "actions", "default action", title=title,
                ids=("group", "default action"))
    for r in data["records"]:
        status = "[green]yes[/green]" if r["available"] else f"[red]no[/red] ({r['unavailable_reason']})"
        out.add_row(r["group_key"], r["label"], r["tile_kind"], status, str(len(r["actions"])),
                    r["default_action_id"] or "-")
    return out


def _has_records(instance: App, tenant: str) -> bool:
    """Whether the database holds anything for ``tenant`` (an integration row or an add-on).

    One Core statement over :mod:`mspflow.db.tables`: the ORM models are not needed to print a catalog.
    """
    from sqlalchemy import exists, or_, select

    from mspflow.db.errors import database_problem
    from mspflow.db.tables import rmm_integrations, teams_integrations, tenant_addons

    stmt = select(or_(*(exists().where(t.c.tenant == tenant)
                        for t in (rmm_integrations, teams_integrations, tenant_addons))))
    try:
        with instance.db.engine.connect() as conn:
            return bool(conn.execute(stmt).scalar())
    except Exception as exc:  # the catalog is printed; a table a host does not have is no reason to fail
        if database_problem(exc) is None:
            raise
        return True


@app.command("catalog")
def catalog_cmd(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant id.")] = None,
    all_tenants: Annotated[bool, typer.Option(
        "--all-tenants", help="Every tenant the database knows; with --json one object per line, streamed.")] = False,
    palette: Annotated[bool, typer.Option("--palette", help="Only the available tiles.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The designer catalog of a tenant (or of every tenant): every module with available true/false."""
    if (tenant is None) == (not all_tenants):
        raise typer.BadParameter("give either --tenant TENANT or --all-tenants", param_hint="--tenant")
    if tenant is None:  # every tenant: from the loaded plugins (App.catalogs)
        from mspflow.schema_cache import prime

        instance = load(as_json)
        db_guard(as_json, instance)
        if as_json:  # only the JSON holds schemas: every action's, from the cache when it is fresh
            prime(instance.registry.actions.values())
        _all_catalogs(instance, palette, as_json)
        return
    from mspflow.app import App
    from mspflow.snapshot import RegistrySnapshot

    snapshot = RegistrySnapshot.open()  # fresh: the plugins need not load (nor be imported) at all
    instance = App.from_env() if snapshot.fresh else load(as_json)
    db_guard(as_json, instance)
    data = snapshot.catalog(instance, tenant, palette=palette)
    if as_json:
        print_json(data)
    else:
        console().print(catalog_table(data, palette))
    if not _has_records(instance, tenant):
        note(f"tenant {tenant!r} has no records in {instance.db.display_url()}, so every integration is "
             f"unavailable; connect one with `mspflow tenant connect {tenant} PROVIDER`")


def _all_catalogs(instance: App, palette: bool, as_json: bool) -> None:
    import sys

    from mspflow.catalog import json_lines

    count = 0
    if as_json:  # App.catalogs streams a chunk of tenants at a time; each line is written as it comes
        for line in json_lines(instance.catalogs(), palette=palette):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            count += 1
    else:
        out = table("tenant", "available tiles", "unavailable", title="Catalogs of every tenant",
                    ids=("tenant",))
        progress = sys.stderr.isatty()
        for catalog in instance.catalogs():
            available = [r.module.group_key for r in catalog.records if r.available]
            unavailable = [f"{r.module.group_key} ({r.unavailable_reason})" for r in catalog.records
                           if not r.available]
            out.add_row(catalog.tenant, ", ".join(available) or "-",
                        "-" if palette else ", ".join(unavailable) or "-")
            count += 1
            if progress and count % 100 == 0:
                sys.stderr.write(f"\r{count} tenant(s)…")
                sys.stderr.flush()
        if progress and count >= 100:
            sys.stderr.write("\r")
        if count:
            console().print(out)
    if not count:
        note(f"no tenant has records in {instance.db.display_url()}; connect one with "
             "`mspflow tenant connect TENANT PROVIDER`")
