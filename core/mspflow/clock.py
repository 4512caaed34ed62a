"""UTC time for everything mspflow stores (SQLite hands datetimes back naive; they are UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` with UTC attached when the database returned it naive (SQLite)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
