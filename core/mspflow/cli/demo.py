"""``mspflow demo``: two demo tenants' catalogs and a two-step workflow run."""

from __future__ import annotations

import json

from mspflow.cli import app
from mspflow.cli._output import JsonOpt, console, db_guard, load, print_json
from mspflow.cli.catalog import catalog_table


@app.command("demo")
def demo_cmd(as_json: JsonOpt = False) -> None:
    """Catalogs of a connected and a disconnected tenant, and a small escalation workflow run."""
    from mspflow import demo

    instance = load(as_json)
    db_guard(as_json, instance)
    if not as_json:
        console().print(f"[bold]mspflow demo[/bold] on {instance.db.display_url()}")
    result = demo.run(instance)
    if as_json:
        print_json(result)
        return
    screen = console()
    providers = result["providers"]
    if providers:
        screen.print(f"{demo.CONNECTED}: connected to {', '.join(providers)}; "
                      f"{demo.DISCONNECTED}: connected to nothing.")
    else:
        screen.print("No integration plugins are installed, so only the core groups show. "
                      "Install one (pip install mspflow-<vendor>) and run the demo again.")
    for tenant in (demo.CONNECTED, demo.DISCONNECTED):
        screen.print(catalog_table(instance.catalog(tenant), palette=False))
    screen.print(f"[bold]Workflow run {demo.RUN_ID}[/bold] for {demo.CONNECTED}:")
    for step in result["workflow"]["steps"]:
        if step["ok"]:
            how = "replayed (recorded result, nothing done twice)" if step["replayed"] else "ran"
            screen.print(f"  {step['step']} {step['action_id']}: [green]{how}[/green]")
            text = json.dumps(step["output"])
            screen.print("    " + (text if len(text) <= 400 else text[:400] + " …"), highlight=False, soft_wrap=True)
        else:
            screen.print(f"  {step['step']} {step['action_id']}: [red]{step['error']['code']}[/red] "
                          f"{step['error']['message']}")
    screen.print(f"Outbox for the host: {len(result['outbox'])} undelivered event(s) "
                  f"({', '.join(sorted({e['event_type'] for e in result['outbox']})) or 'none'}).")
    screen.print("Next: [bold]mspflow catalog --tenant demo-connected --palette[/bold], "
                  "[bold]mspflow invocations --tenant demo-connected[/bold], "
                  "[bold]mspflow outbox list[/bold], [bold]mspflow describe scheduling.create_entry[/bold].")
