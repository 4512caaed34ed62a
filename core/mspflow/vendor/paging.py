"""Paging styles, declared once per vendor; the loop that walks the pages lives in the client.

Examples::

    Vendor("NinjaOne", ..., paging=KeysetPaging(after="after", size="pageSize", page_size=100))
    Vendor("Level", ..., paging=CursorPaging(cursor="starting_after", size="limit", page_size=100))
    Vendor("Huntress", ..., paging=TokenPaging(token="page_token", size="limit", page_size=500))

    http.pages(("v2", "devices"), limit=500)                  # every item, across pages
    http.pages(("v1", "agents"), items="agents")              # a list wrapped in a named field
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mspflow.errors import ActionError


class Paging(Protocol):
    size: str
    page_size: int

    def items(self, vendor: str, body: Any, key: str | None) -> list[Any]:
        """The items of one page."""
        ...

    def next(self, vendor: str, body: Any, page: list[Any], sizes: list[int]) -> dict[str, Any] | None:
        """Query parameters for the next page, or None after the last one. ``sizes``: every page so far."""
        ...


def _list(vendor: str, value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ActionError("TRANSIENT_FAILURE", f"{vendor} API returned a {type(value).__name__} where a list "
                          f"was expected ({where})", details={"reason": "VENDOR_REPLY_SHAPE", "field": where})
    return value


def _id_of(vendor: str, item: Any, key: str) -> Any:
    if not isinstance(item, dict) or item.get(key) in (None, ""):
        raise ActionError("TRANSIENT_FAILURE", f"{vendor} API returned a list item without {key!r}, so the next "
                          "page cannot be asked for", details={"reason": "VENDOR_REPLY_SHAPE", "field": key})
    return item[key]


@dataclass(frozen=True)
class KeysetPaging:
    """Bare JSON arrays paged by ``after=<last id>`` (NinjaOne).

    Stops on an empty page, or on a short page once the server has shown it honours the page size (a
    full page earlier) or shown its own smaller cap (this page is shorter than an earlier one): a
    server that caps the page size below the one asked for must not end the walk after page one.
    """

    after: str = "after"
    size: str = "pageSize"
    id_key: str = "id"
    page_size: int = 100

    def items(self, vendor: str, body: Any, key: str | None) -> list[Any]:
        return _list(vendor, body if key is None else (body or {}).get(key), key or "body")

    def next(self, vendor: str, body: Any, page: list[Any], sizes: list[int]) -> dict[str, Any] | None:
        if not page:
            return None
        earlier = sizes[:-1]
        if len(page) < self.page_size and earlier and (
                self.page_size in earlier or len(page) < max(earlier)):
            return None
        return {self.after: _id_of(vendor, page[-1], self.id_key)}


@dataclass(frozen=True)
class CursorPaging:
    """``{"data": [...], "has_more": bool}`` paged by ``starting_after=<last id>`` (Level)."""

    cursor: str = "starting_after"
    size: str = "limit"
    page_size: int = 100
    id_key: str = "id"
    items_key: str = "data"
    has_more: str = "has_more"

    def items(self, vendor: str, body: Any, key: str | None) -> list[Any]:
        if not isinstance(body, dict):
            return _list(vendor, body, "body")
        return _list(vendor, body.get(key or self.items_key), key or self.items_key)

    def next(self, vendor: str, body: Any, page: list[Any], sizes: list[int]) -> dict[str, Any] | None:
        if not page or not (isinstance(body, dict) and body.get(self.has_more) is True):
            return None
        return {self.cursor: _id_of(vendor, page[-1], self.id_key)}


@dataclass(frozen=True)
class TokenPaging:
    """``{"<items>": [...], "pagination": {"next_page_token": …}}`` paged by ``page_token`` (Huntress)."""

    token: str = "page_token"
    size: str = "limit"
    page_size: int = 500
    next_token: tuple[str, ...] = ("pagination", "next_page_token")

    def items(self, vendor: str, body: Any, key: str | None) -> list[Any]:
        if key is None:
            raise ActionError.internal("TokenPaging needs the name of the list field: http.pages(..., items=...)")
        return _list(vendor, body.get(key) if isinstance(body, dict) else None, key)

    def next(self, vendor: str, body: Any, page: list[Any], sizes: list[int]) -> dict[str, Any] | None:
        value: Any = body
        for part in self.next_token:
            value = value.get(part) if isinstance(value, dict) else None
        if not page or not isinstance(value, str) or not value:
            return None
        return {self.token: value}
