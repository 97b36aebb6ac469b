"""Tests for customer_model_factory.timestamps (RFC 3339 section 5.6 instants)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_model_factory.timestamps import parse_instant

# Offsets with whole minutes only: RFC 3339 offsets have no seconds field.
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Years 2..9998 so that shifting by any offset stays inside datetime's range.
aware_datetimes = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)


def _z_form(moment: datetime) -> str:
    """Format as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (isoformat pads the year to four digits)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


@settings(max_examples=200)
@given(aware_datetimes)
def test_round_trip_z_form(moment: datetime) -> None:
    parsed = parse_instant(_z_form(moment), field="t")
    assert parsed == moment
    assert parsed.tzinfo is UTC


@settings(max_examples=200)
@given(aware_datetimes)
def test_round_trip_offset_form(moment: datetime) -> None:
    text = moment.isoformat()
    assert re.search(r"[+-][0-9]{2}:[0-9]{2}$", text)
    parsed = parse_instant(text, field="t")
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


@settings(max_examples=100)
@given(st.dates())
def test_date_only_is_midnight_utc(day: date) -> None:
    parsed = parse_instant(day.isoformat(), field="d")
    assert parsed == datetime(day.year, day.month, day.day, tzinfo=UTC)


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_raises_value_error_naming_field(text: str) -> None:
    try:
        parsed = parse_instant(text, field="some.field")
    except ValueError as exc:
        assert str(exc).startswith("some.field: ")
    else:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-18T18:45:00Z", datetime(2026, 5, 18, 18, 45, tzinfo=UTC)),
        ("2026-05-18t18:45:00z", datetime(2026, 5, 18, 18, 45, tzinfo=UTC)),
        ("2026-05-18T20:45:00+02:00", datetime(2026, 5, 18, 18, 45, tzinfo=UTC)),
        ("2026-05-18T00:15:00-01:30", datetime(2026, 5, 18, 1, 45, tzinfo=UTC)),
        ("2026-05-18T18:45:00-00:00", datetime(2026, 5, 18, 18, 45, tzinfo=UTC)),
        ("2026-05-18T18:45:00.5Z", datetime(2026, 5, 18, 18, 45, 0, 500000, tzinfo=UTC)),
        # Digits beyond microseconds are truncated, never rounded up into the next second.
        ("2026-05-18T18:45:59.9999999Z", datetime(2026, 5, 18, 18, 45, 59, 999999, tzinfo=UTC)),
        ("2026-05-18", datetime(2026, 5, 18, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)),
        ("2026-05-18T23:30:00-23:59", datetime(2026, 5, 19, 23, 29, tzinfo=UTC)),
    ],
)
def test_known_instants(text: str, expected: datetime) -> None:
    assert parse_instant(text, field="t") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "2026-05-18T18:45:00",  # a date-time without an offset is a local time, not an instant
        "2026-05-18 18:45:00Z",  # RFC 3339 permits the space only as an application choice
        "2026-05-18T18:45Z",  # seconds are mandatory
        "2026-5-18",
        "26-05-18",
        "2026-05-18Z",
        " 2026-05-18",
        "2026-05-18\n",
        "2026-05-18T18:45:00Z\n",
        "2026-05-18T18:45:00.Z",
        "2026-05-18T18:45:00+0200",
        "2026-05-18T18:45:00+02",
        "\uff12\uff10\uff12\uff16-05-18",  # full-width digits match \d but are not ASCII digits
        "2026-13-01",
        "2026-00-10",
        "2026-02-30",
        "2025-02-29",
        "2026-05-32",
        "0000-01-01",
        "2026-05-18T24:00:00Z",
        "2026-05-18T23:60:00Z",
        "2026-12-31T23:59:60Z",  # leap second: not representable by datetime
        "2026-05-18T18:45:00+24:00",
        "2026-05-18T18:45:00+05:60",
        "0001-01-01T00:00:00+00:01",  # before datetime.min once shifted to UTC
        "9999-12-31T23:59:59-00:01",  # after datetime.max once shifted to UTC
        "not a timestamp",
    ],
)
def test_rejected_values_name_the_field(text: str) -> None:
    with pytest.raises(ValueError, match=r"^risks\[0\]\.expires_at: "):
        parse_instant(text, field="risks[0].expires_at")


@pytest.mark.parametrize("value", [None, 20260518, b"2026-05-18"])
def test_non_string_values_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match=r"^generated_at: expected an RFC 3339 instant string"):
        parse_instant(value, field="generated_at")  # type: ignore[arg-type]


def test_error_message_truncates_long_input() -> None:
    with pytest.raises(ValueError) as info:
        parse_instant("x" * 10_000, field="f")
    assert len(str(info.value)) < 200
