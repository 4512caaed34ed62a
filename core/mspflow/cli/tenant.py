"""Standalone tenant admin: ``tenant connect``, ``disconnect``, ``show``, ``set-secret``, ``authorize``,
``teams-profile``, ``link-user``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mspflow.cli import tenant_app
from mspflow.cli._output import JsonOpt, console, db_guard, fail, load, print_json, table, warn

if TYPE_CHECKING:
    from mspflow.app import App


def module_for(instance: App, provider: str) -> Any:
    """The installed module of ``provider`` (``app:<provider>``), or exit 1 listing what is installed."""
    module = instance.registry.modules.get(f"app:{provider}")
    if module is None:
        known = sorted(m.provider for m in instance.registry.modules.values() if m.provider)
        fail(f"no installed plugin offers {provider!r}; installed: {', '.join(known) or 'none'}")
    return module


@tenant_app.command("connect")
def tenant_connect(
    tenant: str,
    provider: Annotated[str, typer.Argument(help="e.g. ninjaone, tacticalrmm, teams")],
    instance_url: Annotated[str | None, typer.Option(help="The vendor instance/API URL.")] = None,
) -> None:
    """Mark an integration connected and active for a tenant."""
    from mspflow import tenants
    from mspflow.errors import ActionError

    instance = load()
    db_guard(False, instance)
    try:  # tenants.connect checks the instance URL against the plugin's Vendor declaration
        with instance.db.session() as session:
            tenants.connect(session, instance.registry, tenant, provider, instance_url)
    except tenants.UnknownProvider as exc:
        fail(str(exc))
    except ActionError as exc:
        fail(exc.message)
    typer.echo(f"{tenant}: {provider} connected")


@tenant_app.command("disconnect")
def tenant_disconnect(tenant: str, provider: str) -> None:
    """Mark an integration inactive for a tenant (its row and settings are kept)."""
    from mspflow import tenants

    instance = load()
    db_guard(False, instance)
    try:
        with instance.db.session() as session:
            changed = tenants.disconnect(session, instance.registry, tenant, provider)
    except tenants.UnknownProvider as exc:
        fail(str(exc))
    typer.echo(f"{tenant}: {provider} disconnected" if changed else f"{tenant}: {provider} was not connected")


@tenant_app.command("teams-profile")
def tenant_teams_profile(
    tenant: str,
    client_id: Annotated[str, typer.Option("--client-id", help="The Entra app registration's client id.")],
    entra_tenant_id: Annotated[str, typer.Option("--entra-tenant-id", help="Its directory (tenant) id, or a domain.")],
    secret_ref: Annotated[str, typer.Option(
        "--client-secret-ref", help="The tenant secret holding the client secret (store it with `tenant set-secret`).")
    ] = "teams_client_secret",
    teams_app_id: Annotated[str | None, typer.Option("--teams-app-id", help="The Teams app (manifest) id.")] = None,
    cloud: Annotated[str, typer.Option(help="public (GCC included), gcch or dod.")] = "public",
    profile_id: Annotated[str, typer.Option("--profile-id", help="The profile's name in this tenant.")] = "default",
    display_name: Annotated[str, typer.Option("--display-name")] = "Teams bot",
    endpoint: Annotated[list[str] | None, typer.Option(
        "--endpoint", help="KEY=URL overriding graph, login, bot_login or openid (e.g. a simulator); repeatable.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Bind the tenant's Teams integration to a Microsoft app registration (what a PSA's Teams settings page does)."""
    from mspflow.errors import ActionError
    from mspflow.microsoft import save_profile
    from mspflow.secrets import SecretKeyMissing

    endpoints: dict[str, str] = {}
    for item in endpoint or []:
        key, sep, url = item.partition("=")
        if not sep or not key.strip() or not url.strip():
            fail(f"--endpoint {item!r}: write KEY=URL, e.g. graph=https://graph.microsoft.com", as_json=as_json,
                 code="VALIDATION_ERROR")
        endpoints[key.strip()] = url.strip()
    instance = load(as_json)
    db_guard(as_json, instance)
    try:
        with instance.db.session() as session:
            save_profile(session, tenant, profile_id=profile_id, client_id=client_id.strip(),
                         entra_tenant_id=entra_tenant_id.strip(), client_secret_ref=secret_ref,
                         display_name=display_name, cloud=cloud, endpoints=endpoints, teams_app_id=teams_app_id)
    except ActionError as exc:
        fail(exc.message, as_json=as_json, code=exc.code)
    stored: bool | None
    try:
        with instance.db.sessions() as session:
            stored = instance.secrets.get(session, tenant, secret_ref) is not None
    except SecretKeyMissing:
        stored = None  # no key to read the secret store with: cannot tell
    data = {"tenant": tenant, "profile_id": profile_id, "client_id": client_id.strip(),
            "entra_tenant_id": entra_tenant_id.strip(), "cloud": cloud, "teams_app_id": teams_app_id,
            "client_secret_ref": secret_ref, "client_secret_stored": stored, "endpoints": endpoints}
    if as_json:
        print_json(data)
    else:
        typer.echo(f"{tenant}: Teams uses Microsoft profile {profile_id} (client id {data['client_id']}, "
                   f"cloud {cloud})")
    if stored is False:
        warn(f"the client secret is not stored yet: `mspflow tenant set-secret {tenant} {secret_ref} < file`")


@tenant_app.command("link-user")
def tenant_link_user(
    tenant: str,
    user_id: Annotated[str, typer.Argument(help="The PSA user id (what actions name in user_id).")],
    entra_object_id: Annotated[str, typer.Argument(help="The user's Entra object id.")],
) -> None:
    """Link a PSA user to their Microsoft account, so Teams notifications and messages can reach them."""
    from mspflow.errors import ActionError
    from mspflow.microsoft import link_user

    instance = load()
    db_guard(False, instance)
    try:
        with instance.db.session() as session:
            link_user(session, tenant, user_id, entra_object_id.strip())
    except ActionError as exc:
        fail(exc.message, code=exc.code)
    typer.echo(f"{tenant}: user {user_id} linked to Entra object {entra_object_id.strip()}")


@tenant_app.command("show")
def tenant_show(tenant: str, as_json: JsonOpt = False) -> None:
    """A tenant's integrations, add-ons and secret names (never secret values), from the secret store."""
    from mspflow import tenants
    from mspflow.secrets import SecretKeyMissing

    instance = load(as_json)
    db_guard(as_json, instance)
    with instance.db.session() as session:
        data = tenants.describe(session, tenant)
        try:
            data["secrets"] = instance.secrets.names(session, tenant)
        except SecretKeyMissing as exc:
            warn(f"secret names not shown: {exc}")
            data["secrets"] = None
    if as_json:
        print_json(data)
        return
    out = table("provider", "active", "connected at", "instance url", title=f"Tenant {tenant}",
                ids=("instance url",))
    for r in data["rmm_integrations"]:
        out.add_row(r["provider"], "yes" if r["is_active"] else "no", r["connected_at"] or "-",
                    r["instance_url"] or "-")
    if data["teams_integration"]:
        out.add_row("teams", data["teams_integration"]["install_status"], "-", "-")
    screen = console()
    screen.print(out)
    screen.print(f"add-ons: {', '.join(a['addon_key'] for a in data['addons']) or '-'}", highlight=False)
    if data["secrets"] is not None:
        screen.print(f"secrets: {', '.join(data['secrets']) or '-'}", highlight=False)


@tenant_app.command("set-secret")
def tenant_set_secret(tenant: str, name: str) -> None:
    """Store a tenant secret. The value is read from stdin or a hidden prompt, never from argv."""
    from mspflow.secrets import SecretKeyMissing

    if sys.stdin.isatty():
        value = typer.prompt(f"value for {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        fail("empty secret value; pipe it on stdin (e.g. `... set-secret T NAME < file`) or type it at "
             "the prompt")
    instance = load()
    db_guard(False, instance)
    try:
        store = instance.secrets
        with instance.db.session() as session:
            store.set(session, tenant, name, value)
    except SecretKeyMissing as exc:
        fail(str(exc))
    typer.echo(f"{tenant}: secret {name} stored (encrypted)")


@tenant_app.command("authorize")
def tenant_authorize(
    tenant: str,
    provider: Annotated[str, typer.Argument(help="e.g. ninjaone")],
    region: Annotated[str | None, typer.Option(help="Vendor region (e.g. eu); default: the tenant's URL.")] = None,
    code: Annotated[str | None, typer.Option(help="The authorization code (else asked for).")] = None,
) -> None:
    """Authorize a user-context OAuth2 app: prints the authorize URL, takes the code, stores the tokens."""
    import json as _json
    import secrets as _secrets
    from urllib.parse import parse_qs, urlencode, urlparse

    from mspflow import tenants
    from mspflow.errors import ActionError
    from mspflow.redaction import Redactor
    from mspflow.secrets import SecretKeyMissing
    from mspflow.vendor import check_instance_url, normalize_base_url
    from mspflow.vendor.auth import exchange_code

    instance = load()
    db_guard(False, instance)
    module = module_for(instance, provider)
    oauth = module.oauth
    if oauth is None:
        fail(f"the {provider} plugin does not use an authorization-code OAuth app")
    regions = dict(module.vendor.regions) if module.vendor is not None else {}
    with instance.db.session() as session:
        current = tenants.describe(session, tenant)
    row = next((r for r in current["rmm_integrations"] if r["provider"] == provider), None)
    if region is not None:
        if region not in regions:
            fail(f"unknown region {region!r}; choose one of {', '.join(regions)}")
        base = regions[region]
    elif row and row["instance_url"]:
        base = row["instance_url"]
    elif regions:
        base = next(iter(regions.values()))
    else:
        fail("pass --region or connect the tenant with --instance-url first")
    try:
        base = check_instance_url(module.vendor, base) if module.vendor is not None else normalize_base_url(base)
        with instance.db.session() as session:
            client_id = instance.secrets.get(session, tenant, oauth.client_id)
            client_secret = instance.secrets.get(session, tenant, oauth.client_secret)
    except SecretKeyMissing as exc:
        fail(str(exc))
    except Exception as exc:  # an ActionError about the URL
        fail(str(exc))
    if not client_id or not client_secret:
        fail(f"store the app's credentials first: mspflow tenant set-secret {tenant} {oauth.client_id}, "
              f"then {oauth.client_secret}")
    state = _secrets.token_urlsafe(16)
    url = f"{base}{oauth.authorize_path}?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": oauth.redirect_uri,
        "scope": oauth.scopes, "state": state})
    typer.echo(f"1. Open this URL as the {module.label} user whose rights scripts should run with:\n   {url}")
    typer.echo(f"2. After approving, the browser is sent to {oauth.redirect_uri}?code=...; paste that URL or "
               "just the code.")
    pasted = code or typer.prompt("code or redirect URL", hide_input=True)
    if "code=" in pasted:
        query = parse_qs(urlparse(pasted).query)
        if query.get("state", [state])[0] != state:
            fail("the pasted URL belongs to another authorization attempt (state mismatch); start again")
        pasted = query["code"][0]
    redactor = Redactor({client_id, client_secret})
    try:
        creds = exchange_code(oauth, base, pasted, client_id=client_id, client_secret=client_secret,
                              vendor=module.label, redactor=redactor)
    except ActionError as exc:
        fail(redactor.text(exc.message))
    with instance.db.session() as session:
        instance.secrets.set(session, tenant, oauth.credentials, _json.dumps(creds))
        tenants.connect(session, instance.registry, tenant, provider, base)
    typer.echo(f"{tenant}: {provider} authorized; tokens stored in secret {oauth.credentials} (encrypted)"
               + ("" if creds["refresh_token"] else "; no refresh token was issued, so this must be repeated "
                  "when the token expires"))
