"""``mspflow sim serve``: a plugin's vendor simulator over real HTTP."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mspflow.cli import sim_app
from mspflow.cli._output import fail, load
from mspflow.cli.tenant import module_for


@sim_app.command("serve")
def sim_serve(
    vendor: Annotated[str, typer.Argument(help="e.g. ninjaone")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only by default).")] = "127.0.0.1",
) -> None:
    """Serve a vendor's sandbox simulator over real HTTP, for the demo and black-box tests."""
    import importlib
    import signal

    instance = load()
    module = module_for(instance, vendor)
    if not module.simulator:
        fail(f"the {vendor} plugin ships no simulator")
    mod_name, _, cls_name = module.simulator.partition(":")
    sim = getattr(importlib.import_module(mod_name), cls_name)()
    server = sim.serve(host=host, port=port)
    signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    url = f"http://{host}:{server.server_address[1]}"
    typer.echo(f"{module.label} simulator listening on {url}", err=True)
    typer.echo(f"point a tenant at it: MSPFLOW_ALLOW_HTTP_VENDOR_URLS=1 mspflow tenant connect T {vendor} "
               f"--instance-url {url}", err=True)
    sys.stderr.flush()
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.shutdown()
    server.server_close()
