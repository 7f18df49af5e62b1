"""PostgreSQL advisory lock keys, derived in Python.

BLAKE2b rather than the server's ``hashtext``, whose values are not promised to stay the same
across PostgreSQL versions. Two names that collide only share a lock: slower, never wrong.
"""

from __future__ import annotations

import hashlib


def lock_key(*parts: str) -> int:
    """The signed 64-bit advisory lock key of ``parts`` (e.g. an application, a schema, a
    name), joined with NUL bytes."""
    text = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)
