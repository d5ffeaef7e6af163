"""The shapes every connector shares: a source that reads pages, an adapter that maps them.

A *source* speaks one platform's HTTP API (auth, signatures, windows, paging, retries) and yields
that platform's raw order dicts exactly as received. An *adapter* turns one raw dict into the
canonical :class:`db.store.NewOrder`, or raises :class:`Quarantine` with a reason a person can
read; it never guesses. The sync runner (``connectors.sync``) glues the two to the Store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from db.store import NewOrder


class Quarantine(Exception):
    """This payload cannot be ingested as it is; ``reason`` says why in plain words."""

    def __init__(self, reason: str, *, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # short machine code: invalid, unknown_status, missing_field, ...


@dataclass(frozen=True)
class Window:
    """A half-open modified-time window ``[start, end)`` in aware UTC datetimes."""

    start: datetime
    end: datetime


class Adapter(Protocol):
    """Maps one platform's raw order dicts to canonical orders."""

    channel: str

    def external_id(self, raw: dict) -> str:
        """The platform's order id (tid, order_sn, ...); raises Quarantine when missing."""
        ...

    def modified_at(self, raw: dict) -> datetime:
        """The platform's last-modified time as an aware UTC datetime; raises Quarantine when bad."""
        ...

    def to_order(self, raw: dict, *, shop_code: str) -> NewOrder:
        """The canonical order; raises Quarantine (never guesses) on anything it cannot map."""
        ...


class Source(Protocol):
    """Reads one shop's orders from a platform API over HTTP."""

    channel: str
    shop_code: str

    def pages(self, window: Window) -> AsyncIterator[list[dict]]:
        """Every raw order modified in ``window``, page by page; raises on a truncated read."""
        ...
