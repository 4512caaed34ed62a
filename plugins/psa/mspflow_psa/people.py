"""``clients.*`` and ``contacts.*``: look up and search the MSP's clients and their people."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from mspflow import ActionContext, ActionError, exactly_one_of

from .base import CATEGORY, psa, require

Id = Annotated[str, Field(min_length=1, max_length=255)]


class ClientOut(BaseModel):
    client_id: str
    name: str
    email: str | None = None
    phone: str | None = None
    is_inactive: bool = False


class ContactOut(BaseModel):
    contact_id: str
    client_id: str | None = None
    full_name: str
    email: str | None = None
    phone: str | None = None
    is_inactive: bool = False


def _by(ctx: ActionContext, table: str, column: str, value: str, field: str) -> dict[str, Any]:
    """The one row whose ``column`` equals ``value`` case-insensitively (``NOT_FOUND`` otherwise)."""
    exact = ctx.records.find(table, iexact={column: value}, limit=10)
    if not exact:
        raise ActionError.not_found(f"no {table.rstrip('s')} with {column} {value!r}", field=field)
    if len(exact) > 1:
        raise ActionError.conflict(f"{len(exact)} {table} have {column} {value!r}; look it up by id",
                                   field=field, ids=[r[f"{table.rstrip('s')}_id"] for r in exact])
    return exact[0]


class ClientFindInput(BaseModel):
    client_id: Id | None = None
    email: Annotated[str, Field(min_length=3, max_length=320)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None

    _one = exactly_one_of("client_id", "email", "name")


class ClientFindOutput(BaseModel):
    client: ClientOut


@psa.action("clients.find", label="Find client", category=CATEGORY, permission="client:read")
def find_client(params: ClientFindInput, ctx: ActionContext) -> ClientFindOutput:
    """One client by id, email or exact name (case-insensitive); ``NOT_FOUND`` when there is none."""
    if params.client_id is not None:
        row = require(ctx, "clients", "client_id", client_id=params.client_id)
    elif params.email is not None:
        row = _by(ctx, "clients", "email", params.email, "email")
    else:
        assert params.name is not None
        row = _by(ctx, "clients", "name", params.name, "name")
    ctx.records.audit({"client_id": row["client_id"]})
    return ClientFindOutput(client=ClientOut.model_validate(row))


class Page(BaseModel):
    query: Annotated[str, Field(max_length=255)] = Field("", description="Text the name or email contains.")
    include_inactive: bool = False
    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(25, ge=1, le=100)


class ClientSearchOutput(BaseModel):
    clients: list[ClientOut]
    page: int
    page_size: int
    total: int
    has_more: bool


def _search(ctx: ActionContext, table: str, params: Page, columns: list[str], order: str,
            where: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    if not params.include_inactive:
        where = {**where, "is_inactive": False}
    search = (columns, params.query) if params.query else None
    total = ctx.records.count(table, where, search=search)
    rows = ctx.records.find(table, where, search=search, order_by=[order, f"{table.rstrip('s')}_id"],
                            limit=params.page_size, offset=(params.page - 1) * params.page_size)
    return rows, total


@psa.action("clients.search", label="Search clients", category=CATEGORY, permission="client:read")
def search_clients(params: Page, ctx: ActionContext) -> ClientSearchOutput:
    """Clients whose name or email contains the query, by name, a page at a time."""
    rows, total = _search(ctx, "clients", params, ["name", "email"], "name", {})
    ctx.records.audit({"client_ids": [r["client_id"] for r in rows]})
    return ClientSearchOutput(clients=[ClientOut.model_validate(r) for r in rows], page=params.page,
                              page_size=params.page_size, total=total,
                              has_more=params.page * params.page_size < total)


class ContactFindInput(BaseModel):
    contact_id: Id | None = None
    email: Annotated[str, Field(min_length=3, max_length=320)] | None = None

    _one = exactly_one_of("contact_id", "email")


class ContactFindOutput(BaseModel):
    contact: ContactOut


@psa.action("contacts.find", label="Find contact", category=CATEGORY, permission="contact:read")
def find_contact(params: ContactFindInput, ctx: ActionContext) -> ContactFindOutput:
    """One contact by id or email (case-insensitive); ``NOT_FOUND`` when there is none."""
    if params.contact_id is not None:
        row = require(ctx, "contacts", "contact_id", contact_id=params.contact_id)
    else:
        assert params.email is not None
        row = _by(ctx, "contacts", "email", params.email, "email")
    ctx.records.audit({"contact_id": row["contact_id"]})
    return ContactFindOutput(contact=ContactOut.model_validate(row))


class ContactSearchInput(Page):
    client_id: Id | None = Field(None, description="Only this client's contacts.")


class ContactSearchOutput(BaseModel):
    contacts: list[ContactOut]
    page: int
    page_size: int
    total: int
    has_more: bool


@psa.action("contacts.search", label="Search contacts", category=CATEGORY, permission="contact:read")
def search_contacts(params: ContactSearchInput, ctx: ActionContext) -> ContactSearchOutput:
    """Contacts whose name or email contains the query, optionally of one client; paged, by name."""
    where: dict[str, Any] = {}
    if params.client_id is not None:
        require(ctx, "clients", "client_id", client_id=params.client_id)
        where["client_id"] = params.client_id
    rows, total = _search(ctx, "contacts", params, ["full_name", "email"], "full_name", where)
    ctx.records.audit({"contact_ids": [r["contact_id"] for r in rows]})
    return ContactSearchOutput(contacts=[ContactOut.model_validate(r) for r in rows], page=params.page,
                               page_size=params.page_size, total=total,
                               has_more=params.page * params.page_size < total)
