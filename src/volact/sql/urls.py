"""Database URLs: which store a URL names, the file of a SQLite URL, and the URL or message
without its password."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"

# A password given as a URL parameter (libpq accepts ?password=…) rather than in the netloc.
_QUERY_PASSWORD = re.compile(r"(?i)(^|&)(password)=[^&]*")
# The password of a netloc, found without parsing the URL (scheme://user:PASSWORD@…).
_NETLOC_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@]*:(.+)@", re.IGNORECASE)


def is_postgres_url(location: Path | str) -> bool:
    """Whether ``location`` is a PostgreSQL URL (``postgresql://`` or ``postgres://``)."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def sqlite_url_path(url: str) -> str | None:
    """The path after ``sqlite:///`` (``""`` when it names none), or None for another URL.

    As in SQLAlchemy, ``sqlite:///rel/path`` is relative and ``sqlite:////abs/path`` absolute.
    """
    if not url.startswith(SQLITE_SCHEME):
        return None
    return url[len(SQLITE_SCHEME) :]


def redact_url(url: str) -> str:
    """The URL without its password, fit to print or log."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unreadable URL>"
    if password is not None:
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}:***@{netloc}")
    if parts.query:
        parts = parts._replace(query=_QUERY_PASSWORD.sub(r"\1\2=***", parts.query))
    return urlunsplit(parts)


def url_password(url: str) -> str:
    """The password in ``url`` (netloc or ``?password=``), if any, so that no message ever
    repeats it."""
    try:
        parts = urlsplit(url)
        found = parts.password or ""
    except ValueError:
        # A URL that cannot be parsed (an unclosed "[", a bad port) can still hold a password
        # that libpq's own message repeats: take what stands between "user:" and the last "@".
        match = _NETLOC_PASSWORD.search(url)
        return match.group(1) if match else ""
    for name, value in parse_qsl(parts.query):
        if name.lower() == "password" and value:
            found = value
    return unquote(found)


def hide_password(text: str, password: str) -> str:
    """``text`` with every occurrence of ``password`` replaced by ``***``."""
    return text.replace(password, "***") if password else text
