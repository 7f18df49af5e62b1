"""Small strict readers for untrusted JSON values.

Each raises :class:`~volact.core.errors.BadRequest` naming the field, so every parser of input a
stranger can send (HTTP bodies, files, signed payloads) reports problems the same way.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from volact.core.errors import BadRequest

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]+$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
MAX_INT = 2**53  # JSON-safe integers only


def obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object", {"field": name})
    return value


def string(data: dict[str, Any], name: str, *, max_len: int = 255, min_len: int = 1) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"field {name!r} must be a string", {"field": name})
    if not min_len <= len(value) <= max_len:
        raise BadRequest(
            f"field {name!r} must be {min_len}–{max_len} characters long",
            {"field": name, "min": min_len, "max": max_len},
        )
    if _CONTROL.search(value):
        raise BadRequest(f"field {name!r} contains control characters", {"field": name})
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") decoded from JSON
            raise BadRequest(f"field {name!r} is not valid Unicode", {"field": name}) from exc
    return value


def optional_string(data: dict[str, Any], name: str, *, max_len: int = 255) -> str | None:
    if data.get(name) is None:
        return None
    return string(data, name, max_len=max_len)


def identifier(data: dict[str, Any], name: str) -> str:
    """A product, group or vendor id: lowercase letters, digits, '.', '_' and '-', ≤ 64 chars."""
    value = string(data, name, max_len=64)
    if not _ID.match(value):
        raise BadRequest(
            f"field {name!r} must be lowercase letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, at most 64 characters)",
            {"field": name},
        )
    return value


def check_identifier(value: str, name: str) -> str:
    return identifier({name: value}, name)


def integer(
    data: dict[str, Any], name: str, *, minimum: int = -MAX_INT, maximum: int = MAX_INT
) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"field {name!r} must be an integer", {"field": name})
    if not minimum <= value <= maximum:
        raise BadRequest(
            f"field {name!r} must be between {minimum} and {maximum}",
            {"field": name, "min": minimum, "max": maximum},
        )
    return value


def optional_integer(
    data: dict[str, Any], name: str, *, minimum: int = -MAX_INT, maximum: int = MAX_INT
) -> int | None:
    if data.get(name) is None:
        return None
    return integer(data, name, minimum=minimum, maximum=maximum)


def uuid_text(data: dict[str, Any], name: str) -> str:
    """A UUID in any form the ``uuid`` module reads, returned lowercase and hyphenated."""
    value = string(data, name, max_len=36, min_len=32)
    if _CANONICAL_UUID.match(value):
        return value  # already the form str(uuid.UUID(value)) would give
    import uuid  # only for the uncommon forms: the module costs more than the rest of this one

    try:
        parsed = uuid.UUID(value)
    except ValueError as exc:
        raise BadRequest(f"field {name!r} must be a UUID", {"field": name}) from exc
    return str(parsed)


def hex_text(data: dict[str, Any], name: str, *, min_len: int = 16, max_len: int = 128) -> str:
    value = string(data, name, min_len=min_len, max_len=max_len)
    if not _HEX.match(value):
        raise BadRequest(f"field {name!r} must be lowercase hexadecimal", {"field": name})
    return value


def base64url(data: dict[str, Any], name: str, *, min_bytes: int, max_bytes: int) -> str:
    """Unpadded (or padded) base64url text decoding to ``min_bytes``–``max_bytes`` bytes."""
    value = string(data, name, max_len=(max_bytes * 4 + 2) // 3 + 2)
    stripped = value.rstrip("=")
    if not _B64URL.match(stripped):
        raise BadRequest(f"field {name!r} must be base64url", {"field": name})
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"field {name!r} must be base64url", {"field": name}) from exc
    if not min_bytes <= len(raw) <= max_bytes:
        raise BadRequest(
            f"field {name!r} must decode to {min_bytes}–{max_bytes} bytes",
            {"field": name, "min": min_bytes, "max": max_bytes},
        )
    return stripped


def string_list(data: dict[str, Any], name: str, *, max_items: int = 64) -> list[str]:
    value = data.get(name)
    if not isinstance(value, list) or not 1 <= len(value) <= max_items:
        raise BadRequest(f"field {name!r} must be a list of 1–{max_items} strings", {"field": name})
    return [string({name: item}, name) for item in value]
