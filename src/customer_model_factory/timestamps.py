"""Strict parsing of RFC 3339 instants for the stage modules' time fields.

The reference compares timestamps as strings, so ``"2026-05-18"`` sorts before
``"2026-05-18T00:00:00Z"`` although both name the same instant. Parsing first makes the
comparison about time, not about spelling.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["parse_instant"]

# RFC 3339 section 5.6 ``date-time`` (full-date "T" full-time) or a bare ``full-date``.
# ``[0-9]`` rather than ``\d``: ``\d`` also matches non-ASCII digits such as U+FF10.
# Lower-case "t" and "z" are allowed by the note at the end of RFC 3339 section 5.6.
_INSTANT = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<off_hour>[0-9]{2}):(?P<off_minute>[0-9]{2}))"
    r")?"
)

_MAX_ECHO = 80  # longest input echoed back in an error message


def parse_instant(value: str, *, field: str) -> datetime:
    """Parse an RFC 3339 (section 5.6) instant or a full-date into an aware UTC datetime.

    Accepted: ``YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`` and ``YYYY-MM-DD`` (which means
    00:00:00Z of that day). Fractions beyond microseconds are truncated. Anything else (a
    date-time without an offset, surrounding whitespace, out-of-range fields including the
    leap second ``:60``, which ``datetime`` cannot represent) raises ValueError naming ``field``.
    """
    if not isinstance(value, str):
        kind = type(value).__name__
        raise ValueError(f"{field}: expected an RFC 3339 instant string, got {kind}")
    match = _INSTANT.fullmatch(value)
    if match is None:
        raise ValueError(f"{field}: {_echo(value)} is not an RFC 3339 instant or YYYY-MM-DD date")
    try:
        return _to_utc(match)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{field}: {_echo(value)} is out of range: {exc}") from None


def _to_utc(match: re.Match[str]) -> datetime:
    """Build the UTC datetime a syntactically valid match denotes; raise on out-of-range fields."""
    year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
    if match["hour"] is None:
        return datetime(year, month, day, tzinfo=UTC)
    local = datetime(
        year,
        month,
        day,
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"]),
        _microseconds(match["fraction"]),
        tzinfo=_offset(match),
    )
    return local.astimezone(UTC)


def _microseconds(fraction: str | None) -> int:
    """Return the microseconds of an RFC 3339 ``time-secfrac`` (digits after the dot), truncated."""
    if fraction is None:
        return 0
    return int(fraction[:6].ljust(6, "0"))


def _offset(match: re.Match[str]) -> timezone:
    """Return the fixed offset of an RFC 3339 ``time-offset``; ``-00:00`` is read as UTC."""
    if match["sign"] is None:
        return UTC
    hours, minutes = int(match["off_hour"]), int(match["off_minute"])
    # timedelta would silently normalise "05:60" to six hours, so range-check the parts.
    if hours > 23 or minutes > 59:
        raise ValueError("time-offset must be within -23:59..+23:59")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if match["sign"] == "-" else delta)


def _echo(value: str) -> str:
    """Return ``repr(value)`` shortened so that hostile input cannot flood an error message."""
    text = repr(value)
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 3] + "..."
