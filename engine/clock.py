"""Time as OCP shows it: ISO-8601 with milliseconds and the local UTC offset.

Stored times are UTC; they are rendered in the machine's local zone only when shown, so that a
database shared by hosts in different zones stays unambiguous.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Stored times come back naive from SQLite and aware from PostgreSQL: make them all aware."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def ocp_time(value: datetime | None) -> str | None:
    """``2021-09-03T15:05:01.1+08:00``: to the millisecond, with trailing zeros of the fraction
    left out (``.1``, and no fraction at all on a whole second), as OCP's Jackson writes times.
    SQLite hands back naive datetimes: those are UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone().isoformat(timespec="milliseconds")
    whole, fraction, offset = text[:19], text[20:23].rstrip("0"), text[23:]
    return f"{whole}.{fraction}{offset}" if fraction else whole + offset


def seconds_between(start: datetime, end: datetime) -> float:
    """Seconds from ``start`` to ``end`` as OCP's times show them (to the millisecond), so a
    duration reads the same from the database and from the API's records."""
    return (_ms(end) - _ms(start)) / 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return (as_utc(moment) - _EPOCH) // timedelta(milliseconds=1)  # type: ignore[operator]
