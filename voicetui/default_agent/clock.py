"""The current time, here or in an IANA time zone (``zoneinfo``)."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime, tzinfo


class TimeZoneError(ValueError):
    """An unknown time zone; the message suggests the right form."""


@functools.lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


_ALIASES = {"utc": "UTC", "gmt": "UTC", "z": "UTC", "zulu": "UTC"}


def find_zone(name: str) -> zoneinfo.ZoneInfo:
    """``name`` as a zone: an IANA name in any case (``europe/paris``), spaces for underscores
    (``America/New York``) or a city alone when unambiguous (``Tokyo``). Reads the tz database
    (blocking file I/O). Raises :class:`TimeZoneError`."""
    text = name.strip()
    if not text:
        raise TimeZoneError("the time zone is empty")
    if text.casefold() in _ALIASES:
        return zoneinfo.ZoneInfo(_ALIASES[text.casefold()])
    candidate = text.replace(" ", "_")
    try:
        return zoneinfo.ZoneInfo(candidate)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    names = _zone_names()
    exact = names.get(candidate.casefold())
    if exact is not None:
        return zoneinfo.ZoneInfo(exact)
    cities = [full for key, full in names.items() if key.rsplit("/", 1)[-1] == candidate.casefold()]
    if len(cities) == 1:
        return zoneinfo.ZoneInfo(cities[0])
    raise TimeZoneError(
        f"unknown time zone {name!r}; use an IANA name such as Europe/Paris or America/New_York"
    )


def _offset(dt: datetime) -> str:
    delta = dt.utcoffset()
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def current_time(timezone: str | None = None, *, now: datetime | None = None) -> str:
    """The time as a short sentence for the LLM: ``"14:05 on Tuesday 24 November 2026
    (Europe/Paris, UTC+01:00)"``. ``now``: an aware datetime to use instead of the clock."""
    zone: tzinfo | None = find_zone(timezone) if timezone else None
    moment = now if now is not None else datetime.now().astimezone()
    local = moment.astimezone(zone) if zone is not None else moment.astimezone()
    zone_name = str(zone) if zone is not None else (local.tzname() or "local time")
    date = f"{local:%A} {local.day} {local:%B %Y}"
    return f"{local:%H:%M} on {date} ({zone_name}, {_offset(local)})"
