"""Write tests/core/vectors/keys.json, the product key test vectors.

Run it only for a deliberate change of the key format (which also needs a new KEY_VERSION, since
keys already handed out must keep parsing), never to make a failing test pass:

    .venv/bin/python tests/core/vectors/make_keys_vectors.py

The vectors pin the encoding, the checksum, the GVLK tags and the serials; the test
tests/core/test_keys.py loads them and checks this code against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from volact.core import keys

GVLK_INPUTS = [
    ("acme", "office-2026", "writer-2026"),
    ("acme", "office-2026", "sheets-2026"),
    ("acme", "office-2027", "writer-2026"),
    ("globex", "office-2026", "writer-2026"),
    ("Ächt Software GmbH", "büro-2026", "schreiber-2026"),
    ("v", "g", "p"),
]

SECRET_INPUTS = [
    ("host", "000000000000000000000000"),
    ("host", "00112233445566778899aabb"),
    ("host", "ffffffffffffffffffffffff"),
    ("mak", "000000000000000000000001"),
    ("mak", "0f1e2d3c4b5a69788796a5b4"),
    ("mak", "ffffffffffffffffffffffff"),
]


def _raw_key(version: int, channel_code: int, body: int) -> str:
    """A key with a valid checksum around any fields, for the invalid-input vectors."""
    return keys._encode(
        (version << keys.VERSION_SHIFT) | (channel_code << keys.CHANNEL_SHIFT) | body
    )


def _one_substitution(text: str) -> str:
    """``text`` with its seventh symbol replaced by the next one in the alphabet."""
    index = 7  # the second symbol of the second group
    symbol = keys.ALPHABET[(keys.ALPHABET.index(text[index]) + 1) % keys.BASE]
    return text[:index] + symbol + text[index + 1 :]


def _neighbour_swap(text: str) -> str:
    """``text`` with its first two different neighbouring symbols swapped."""
    compact = text.replace("-", "")
    index = next(i for i in range(len(compact) - 1) if compact[i] != compact[i + 1])
    swapped = compact[:index] + compact[index + 1] + compact[index] + compact[index + 2 :]
    return "-".join(swapped[i : i + 5] for i in range(0, 25, 5))


def build() -> dict[str, Any]:
    gvlk_vectors = []
    for vendor_id, group, product in GVLK_INPUTS:
        key = keys.make_gvlk(vendor_id, group, product)
        gvlk_vectors.append(
            {
                "vendor_id": vendor_id,
                "group": group,
                "product": product,
                "gvlk": key.text,
                "serial": key.serial,
            }
        )
    secret_vectors = []
    for channel, random_hex in SECRET_INPUTS:
        key = keys.make_secret_key(keys.Channel(channel), bytes.fromhex(random_hex))
        secret_vectors.append(
            {"channel": channel, "random_hex": random_hex, "key": key.text, "serial": key.serial}
        )
    good = gvlk_vectors[0]["gvlk"]
    invalid: list[dict[str, Any]] = [
        {"input": None, "error": "must be text, not NoneType"},
        {"input": 12345, "error": "must be text, not int"},
        {"input": "", "error": "the product key is empty"},
        {"input": "- - -", "error": "the product key is empty"},
        {"input": good[:-1], "error": "this one has 24"},
        {"input": good + "B", "error": "this one has 26"},
        {"input": good + " " * 36, "error": "it has 65 characters"},
        {"input": "O" + good[1:], "error": "character 1 of the product key, 'O'"},
        {"input": good[:6] + "0" + good[7:], "error": "keys use neither 0 nor O"},
        {"input": good[:6] + "l" + good[7:], "error": "keys use none of 1, I and L"},
        {"input": good[:6] + "s" + good[7:], "error": "keys use neither 5 nor S"},
        {"input": good[:6] + "Z" + good[7:], "error": "did you mean 2?"},
        {"input": good[:6] + "A" + good[7:], "error": "keys use only BCDFGHJKMPQRTVWXY2346789"},
        {"input": good[:6] + "\u0412" + good[7:], "error": "not a plain ASCII letter or digit"},
        {"input": _one_substitution(good), "error": "checksum does not match: probably a typo"},
        {"input": _neighbour_swap(good), "error": "checksum does not match: probably a typo"},
        {"input": _raw_key(0, 1, 0), "error": "format version 0"},
        {"input": _raw_key(2, 2, 1), "error": "unknown version"},
        {"input": keys._encode(keys.BASE**keys.DATA_LENGTH - 1), "error": "format version 43"},
        {"input": _raw_key(1, 0, 0), "error": "unknown channel marker (0)"},
        {"input": _raw_key(1, 15, 0), "error": "unknown channel marker (15)"},
        {"input": _raw_key(1, 1, 1 << 80), "error": "reserved bits"},
    ]
    return {
        "about": "volact product key vectors (key format version 1); made by "
        "make_keys_vectors.py, checked by tests/core/test_keys.py",
        "gvlk": gvlk_vectors,
        "secret": secret_vectors,
        "invalid": invalid,
    }


def main() -> None:
    target = Path(__file__).with_name("keys.json")
    text = json.dumps(build(), indent=2, ensure_ascii=True) + "\n"
    if "--check" in sys.argv[1:]:
        sys.exit(0 if target.read_text(encoding="utf-8") == text else 1)
    target.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
