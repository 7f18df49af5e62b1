"""Query parameters of the admin API and dashboard, checked once for both.

A bad value is :class:`~volact.core.errors.BadRequest` naming the parameter; nothing is read.
A parameter given empty is bad too where its type is a number, a flag or a CMID (the API's
schema says so); the dashboard leaves out the empty fields of its forms first
(:func:`given`). Times are Unix seconds in the API; the dashboard's forms also take ISO 8601.
"""

from __future__ import annotations

from calendar import timegm
from collections.abc import Mapping
from time import strptime

from volact.core.errors import BadRequest
from volact.host.admin.views import MAX_LIMIT, ClientQuery, EventQuery, normalised_cmid

TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
MAX_TEXT = 200
MAX_TIME = 2**40


def _text(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"the {name} parameter is longer than {MAX_TEXT} characters")
    return value.strip()


def given(params: Mapping[str, str]) -> dict[str, str]:
    """The parameters that have a value (a form's empty fields left out)."""
    return {name: value for name, value in params.items() if value.strip()}


def integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    if name not in params:
        return default
    text = params[name]
    if len(text) > 20 or not text.isascii() or not text.isdigit():
        raise BadRequest(f"the {name} parameter must be a whole number", {"parameter": name})
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"the {name} parameter must be from {low} to {high}", {"parameter": name})
    return value


def moment(params: Mapping[str, str], name: str, *, iso: bool = False) -> int | None:
    """Unix seconds, or with ``iso`` also an ISO 8601 UTC time (``2026-01-31T12:00:00Z``)."""
    if name not in params:
        return None
    if not iso:
        return integer(params, name, 0, 0, MAX_TIME)
    text = _text(params, name)
    if text.isascii() and text.isdigit() and int(text) <= MAX_TIME:
        return int(text)
    for form in TIME_FORMATS:
        try:
            return timegm(strptime(text, form))
        except ValueError:
            continue
    raise BadRequest(
        f"the {name} parameter must be Unix seconds or an ISO 8601 UTC time (2026-01-31T12:00:00Z)",
        {"parameter": name},
    )


def flag(params: Mapping[str, str], name: str) -> bool | None:
    if name not in params:
        return None
    text = _text(params, name).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise BadRequest(f"the {name} parameter must be true or false", {"parameter": name})


def optional(params: Mapping[str, str], name: str) -> str | None:
    return _text(params, name) or None


def client_query(params: Mapping[str, str], default_limit: int = 50) -> ClientQuery:
    return ClientQuery(
        text=_text(params, "q"),
        group=optional(params, "group"),
        blocked=flag(params, "blocked"),
        limit=integer(params, "limit", default_limit, 1, MAX_LIMIT),
        offset=integer(params, "offset", 0, 0, 2**31),
    )


def event_query(
    params: Mapping[str, str], default_limit: int = 100, *, iso: bool = False
) -> EventQuery:
    return EventQuery(
        kind=optional(params, "kind"),
        cmid=normalised_cmid(params["cmid"]) if "cmid" in params else None,
        since=moment(params, "since", iso=iso),
        until=moment(params, "until", iso=iso),
        limit=integer(params, "limit", default_limit, 1, MAX_LIMIT),
    )
