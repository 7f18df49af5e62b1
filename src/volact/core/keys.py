"""Product keys: 25 characters that people read, type and paste, checked offline.

A key is shown as ``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`` (SPEC §1). This module turns keys into
:class:`ProductKey` values and back, and checks GVLKs against a vendor, product and group.

Alphabet
    ``BCDFGHJKMPQRTVWXY2346789``: the 24 symbols of Microsoft's product keys, which admins already
    know how to read. There are no vowels (so no key spells a word), and one side of every
    common look-alike pair is left out: no 0/O, no 1/I/L, no 5/S, no Z (2 stays), no U (V stays).
    Two weaker pairs stay, B/8 and G/6: dropping them would leave 22 symbols and 102 data bits,
    too few for the 105-bit layout below, and they are distinct in the fonts keys are printed in.
    A slip between them, like any other single slip, is caught by the checksum (below).

Layout
    The 25 symbols are one base-24 number ``N`` (first symbol most significant). Symbol value =
    index in the alphabet. ``N = data * 576 + check``: the first 23 symbols are ``data``, the last
    two are ``check``. ``data`` (< 24**23, which is just over 2**105) holds::

        bits 100..104  version  (5 bits; 1 today; text may decode to up to 43, which is refused)
        bits  96..99   channel  (4 bits; 1 = GVLK, 2 = host key, 3 = MAK; others are refused)
        bits   0..95   body     (96 bits)

    A GVLK body is ``vendor tag (16 bits) << 64 | group tag (32) << 32 | product tag (32)``, the
    top 16 body bits zero; each tag is a truncated, domain-separated SHA-256 (:func:`make_gvlk`).
    A host key or MAK body is 96 bits of the caller's random bytes (:func:`make_secret_key`).
    Because the version and channel sit in the top bits, every version 1 key starts with B, and
    every GVLK with ``BV9CD-`` (a public key that is easy to recognise).

Checksum
    ``check`` is the one value in ``0..570`` that makes ``N ≡ 0 (mod 571)``; 571 is the largest
    prime that fits in two symbols (24² = 576). Position ``k`` (counted from the right, 0..24) has
    weight ``24**k mod 571``, the scheme of ISO 7064 / IBAN check digits. Why it is proof against
    typos, for every key:

    - A single substitution changes a symbol value by ``d``, ``0 < |d| ≤ 23``, so ``N`` changes by
      ``d·24**k``. 571 is prime and divides neither ``d`` (too small) nor 24, so ``N mod 571``
      stops being 0.
    - Swapping neighbours ``a ≠ b`` at positions ``k+1, k`` changes ``N`` by
      ``(b-a)·(24**(k+1) - 24**k) = (b-a)·23·24**k``: no factor is divisible by 571. (Neighbouring
      weights differ.)
    - The same argument covers twin errors (``aa → bb``: factor 25) and jump transpositions
      (``abc → cba``: factor 575 = 5²·23). A random change passes with odds 1 in 571.

    The checksum is over the version and channel too, and its scheme can never change (a reader
    must verify it before trusting the version): :func:`normalise_key` checks form and checksum for
    keys of any version; :func:`parse_key` also insists on a known version and channel.

Serials
    :attr:`ProductKey.serial` (``mak-…``) is a hash of the key, not its body: serials appear in
    host certificates, which every client sees, so a serial must never give a secret key away.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from volact.core.errors import InvalidKey

__all__ = [
    "ALPHABET",
    "KEY_LENGTH",
    "KEY_VERSION",
    "MAX_INPUT_LENGTH",
    "SECRET_RANDOM_BYTES",
    "Channel",
    "ProductKey",
    "check_gvlk",
    "gvlk_group_matches",
    "make_gvlk",
    "make_secret_key",
    "normalise_key",
    "parse_key",
    "require_channel",
]

ALPHABET = "BCDFGHJKMPQRTVWXY2346789"
BASE = len(ALPHABET)
KEY_LENGTH = 25
GROUP_LENGTH = 5
CHECK_LENGTH = 2
DATA_LENGTH = KEY_LENGTH - CHECK_LENGTH
CHECK_MODULUS = 571
MAX_INPUT_LENGTH = 64
"""Longer input is refused before any other work (a key with dashes is 29 characters)."""

KEY_VERSION = 1
SUPPORTED_VERSIONS = frozenset({KEY_VERSION})

BODY_BITS = 96
CHANNEL_BITS = 4
VERSION_BITS = 5
CHANNEL_SHIFT = BODY_BITS
VERSION_SHIFT = BODY_BITS + CHANNEL_BITS
VENDOR_TAG_BITS = 16
GROUP_TAG_BITS = 32
PRODUCT_TAG_BITS = 32
GVLK_BODY_BITS = VENDOR_TAG_BITS + GROUP_TAG_BITS + PRODUCT_TAG_BITS
SECRET_RANDOM_BYTES = BODY_BITS // 8
"""How many random bytes :func:`make_secret_key` needs (96 bits, the whole body)."""

_CHECK_RANGE: int = BASE**CHECK_LENGTH
_SYMBOL_VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
# What people type between groups, and what copying from documents and web pages adds: spaces,
# no-break and zero-width spaces, byte-order marks and the typographic dashes.
_SEPARATORS = frozenset(" \t\r\n-\u00a0\u2010\u2011\u2012\u2013\u2014\u2212\u200b\ufeff")
_NOT_USED_0_O = "keys use neither 0 nor O, which look alike"
_NOT_USED_1_I_L = "keys use none of 1, I and L, which look alike"
_NOT_USED_5_S = "keys use neither 5 nor S, which look alike"
_LOOK_ALIKES = {
    "0": _NOT_USED_0_O,
    "O": _NOT_USED_0_O,
    "1": _NOT_USED_1_I_L,
    "I": _NOT_USED_1_I_L,
    "L": _NOT_USED_1_I_L,
    "5": _NOT_USED_5_S,
    "S": _NOT_USED_5_S,
    "Z": "it is a look-alike of 2, and keys use only the 2: did you mean 2?",
    "U": "it is a look-alike of V, and keys use only the V: did you mean V?",
}
_SERIAL_DOMAIN = b"volact key serial v1\x00"
_GVLK_TAG_DOMAIN = b"volact gvlk tag v1\x00"
_SERIAL_HEX_DIGITS = 24


class Channel(enum.Enum):
    """How a key is sold and used (SPEC §1)."""

    GVLK = "gvlk"
    HOST = "host"
    MAK = "mak"

    @property
    def label(self) -> str:
        """The channel's name in messages: ``GVLK``, ``host key`` or ``MAK``."""
        return _CHANNEL_LABELS[self]

    @property
    def is_secret(self) -> bool:
        """Whether keys of this channel are secrets (host keys and MAKs; GVLKs are public)."""
        return self is not Channel.GVLK


_CHANNEL_LABELS = {Channel.GVLK: "GVLK", Channel.HOST: "host key", Channel.MAK: "MAK"}
_CHANNEL_CODES = {Channel.GVLK: 1, Channel.HOST: 2, Channel.MAK: 3}
_CHANNELS_BY_CODE = {code: channel for channel, code in _CHANNEL_CODES.items()}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, repr=False)
class ProductKey:
    """A decoded product key. Build one with :func:`parse_key`, :func:`make_gvlk` or
    :func:`make_secret_key`; ``str(key)`` is its canonical text.

    Constructing one directly checks that the fields fit the layout (``ValueError`` or
    ``TypeError`` otherwise). The ``repr`` shows the serial, never the body, so a secret key
    that reaches a log stays secret.
    """

    channel: Channel
    version: int
    body: int

    def __post_init__(self) -> None:
        if not isinstance(self.channel, Channel):
            raise TypeError(f"channel must be a Channel, not {type(self.channel).__name__}")
        if not _is_int(self.version):
            raise TypeError(f"version must be an int, not {type(self.version).__name__}")
        if not 0 <= self.version < 1 << VERSION_BITS:
            raise ValueError(f"version must be in 0..{(1 << VERSION_BITS) - 1}")
        if not _is_int(self.body):
            raise TypeError(f"body must be an int, not {type(self.body).__name__}")
        bits = GVLK_BODY_BITS if self.channel is Channel.GVLK else BODY_BITS
        if not 0 <= self.body < 1 << bits:
            raise ValueError(f"a {self.channel.label} body must fit in {bits} bits")

    @property
    def text(self) -> str:
        """The canonical text, ``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX``."""
        data = (
            (self.version << VERSION_SHIFT) | (_CHANNEL_CODES[self.channel] << CHANNEL_SHIFT)
        ) | self.body
        return _encode(data)

    @property
    def serial(self) -> str:
        """A stable id for databases and certificates, such as ``mak-1f0c…`` (24 hex digits).

        It is a one-way hash of the key, so it reveals nothing a key holder could use: it may be
        shown, logged and put into host certificates.
        """
        digest = hashlib.sha256(_SERIAL_DOMAIN + self.text.encode("ascii")).hexdigest()
        return f"{self.channel.value}-{digest[:_SERIAL_HEX_DIGITS]}"

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"ProductKey(channel={self.channel}, version={self.version}, serial={self.serial!r})"


def _encode(data: int) -> str:
    """The canonical text of ``data`` (``0 <= data < 24**23``) with its check symbols."""
    number = data * _CHECK_RANGE + _check_value(data)
    symbols: list[str] = []
    for _ in range(KEY_LENGTH):
        number, value = divmod(number, BASE)
        symbols.append(ALPHABET[value])
    compact = "".join(reversed(symbols))
    return "-".join(compact[i : i + GROUP_LENGTH] for i in range(0, KEY_LENGTH, GROUP_LENGTH))


def _check_value(data: int) -> int:
    """The check value in ``0..570`` that makes ``data * 576 + check`` divisible by 571."""
    return (-data * _CHECK_RANGE) % CHECK_MODULUS


def _decode(text: object) -> int:
    """Check the form and checksum of a typed key and return its data (version, channel, body)."""
    if not isinstance(text, str):
        raise InvalidKey(
            f"a product key must be text, not {type(text).__name__}",
            {"type": type(text).__name__},
        )
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidKey(
            f"this is too long to be a product key: it has {len(text)} characters; a key has "
            f"{KEY_LENGTH} (in five groups of five)",
            {"length": len(text), "max_length": MAX_INPUT_LENGTH},
        )
    compact = [char for char in text if char not in _SEPARATORS]
    if not compact:
        raise InvalidKey("the product key is empty", {"length": 0, "expected_length": KEY_LENGTH})
    if len(compact) != KEY_LENGTH:
        raise InvalidKey(
            f"a product key has {KEY_LENGTH} characters (not counting dashes and spaces); this "
            f"one has {len(compact)}",
            {"length": len(compact), "expected_length": KEY_LENGTH},
        )
    number = 0
    for position, char in enumerate(compact, start=1):
        # Only ASCII is upper-cased: str.upper() can change the length of other text ("ß").
        value = _SYMBOL_VALUES.get(char.upper() if char.isascii() else char)
        if value is None:
            raise _bad_character(char, position)
        number = number * BASE + value
    data, check = divmod(number, _CHECK_RANGE)
    if check != _check_value(data):
        raise InvalidKey(
            "the product key's checksum does not match: probably a typo; check each character",
            {"reason": "checksum"},
        )
    return data


def _bad_character(char: str, position: int) -> InvalidKey:
    upper = char.upper() if char.isascii() else char
    look_alike = upper in _LOOK_ALIKES
    if look_alike:
        hint = _LOOK_ALIKES[upper]
    elif not char.isascii():
        hint = "it is not a plain ASCII letter or digit (was the key copied from a document?)"
    else:
        hint = f"keys use only {ALPHABET}"
    return InvalidKey(
        f"character {position} of the product key, {char!r}, is not used in keys: {hint}",
        {"position": position, "look_alike": look_alike},
    )


def normalise_key(text: str) -> str:
    """Return the canonical text of a typed key: upper-case, five groups of five, with dashes.

    Spaces, dashes (also typographic ones) and case are forgiven, and dashes may be missing or
    misplaced. The length, every character and the checksum are checked (raises
    :class:`~volact.core.errors.InvalidKey`), but not the version or the channel, so keys of
    newer versions can still be stored; :func:`parse_key` checks those too.
    """
    return _encode(_decode(text))


def parse_key(text: str) -> ProductKey:
    """Decode a typed key (see :func:`normalise_key` for what is forgiven).

    Raises :class:`~volact.core.errors.InvalidKey` with a message for people: wrong type,
    too long, wrong length, a character that keys do not use (with its position), a checksum
    mismatch (a typo), an unknown version or channel, or a GVLK with reserved bits set.
    """
    if isinstance(text, str) and len(text) <= MAX_INPUT_LENGTH:
        # Hosts see the same few GVLKs over and over: decode each text once.
        return _parse_key_cached(text)
    return _parse_key(text)


@functools.lru_cache(maxsize=1024)
def _parse_key_cached(text: str) -> ProductKey:
    return _parse_key(text)


def _parse_key(text: str) -> ProductKey:
    data = _decode(text)
    version = data >> VERSION_SHIFT
    if version not in SUPPORTED_VERSIONS:
        raise InvalidKey(
            f"this product key has format version {version}, but this program knows only "
            f"version {KEY_VERSION}: unknown version (a newer volact may read it)",
            {"version": version},
        )
    code = (data >> CHANNEL_SHIFT) & ((1 << CHANNEL_BITS) - 1)
    channel = _CHANNELS_BY_CODE.get(code)
    if channel is None:
        raise InvalidKey(
            f"this product key has an unknown channel marker ({code}); keys are GVLKs, host "
            "keys or MAKs",
            {"channel_code": code},
        )
    body = data & ((1 << BODY_BITS) - 1)
    if channel is Channel.GVLK and body >> GVLK_BODY_BITS:
        raise InvalidKey(
            "this GVLK has reserved bits set, so it was not made by volact",
            {"reason": "reserved_bits"},
        )
    return ProductKey(channel, version, body)


def require_channel(key: ProductKey, channel: Channel) -> None:
    """Raise :class:`~volact.core.errors.InvalidKey` ("this is a MAK, not a host key") unless
    ``key`` is of ``channel``."""
    if key.channel is not channel:
        raise InvalidKey(
            f"this is a {key.channel.label}, not a {channel.label}",
            {"channel": key.channel.value, "expected_channel": channel.value},
        )


@functools.lru_cache(maxsize=4096)
def _tag(bits: int, kind: str, *parts: str) -> int:
    """The top ``bits`` bits of a domain-separated SHA-256 over length-prefixed parts."""
    hasher = hashlib.sha256(_GVLK_TAG_DOMAIN)
    for part in (kind, *parts):
        # surrogatepass: ids decoded from JSON may hold lone surrogates; they must hash, not crash.
        encoded = part.encode("utf-8", "surrogatepass")
        hasher.update(len(encoded).to_bytes(4, "big"))
        hasher.update(encoded)
    return int.from_bytes(hasher.digest(), "big") >> (256 - bits)


def _vendor_tag(vendor_id: str) -> int:
    return _tag(VENDOR_TAG_BITS, "vendor", vendor_id)


def _group_tag(vendor_id: str, group: str) -> int:
    return _tag(GROUP_TAG_BITS, "group", vendor_id, group)


def _product_tag(vendor_id: str, product: str) -> int:
    return _tag(PRODUCT_TAG_BITS, "product", vendor_id, product)


def _gvlk_tags(key: ProductKey) -> tuple[int, int, int]:
    """(vendor tag, group tag, product tag) of a GVLK's body."""
    return (
        key.body >> (GROUP_TAG_BITS + PRODUCT_TAG_BITS),
        (key.body >> PRODUCT_TAG_BITS) & ((1 << GROUP_TAG_BITS) - 1),
        key.body & ((1 << PRODUCT_TAG_BITS) - 1),
    )


def make_gvlk(vendor_id: str, group: str, product: str) -> ProductKey:
    """The GVLK of a product: the same inputs always give the same key.

    Its body carries tags of the vendor (16 bits), of the group (32 bits) and of the product
    (32 bits); group and product tags are bound to the vendor too. A host can so check a GVLK
    against a product and group with :func:`check_gvlk` or :func:`gvlk_group_matches`, without a
    table. Empty or non-string ids raise ``ValueError``.
    """
    for name, value in (("vendor_id", vendor_id), ("group", group), ("product", product)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    body = (
        (_vendor_tag(vendor_id) << (GROUP_TAG_BITS + PRODUCT_TAG_BITS))
        | (_group_tag(vendor_id, group) << PRODUCT_TAG_BITS)
        | _product_tag(vendor_id, product)
    )
    return ProductKey(Channel.GVLK, KEY_VERSION, body)


def _check_gvlk_vendor_and_product(key: ProductKey, vendor_id: str, product: str) -> None:
    require_channel(key, Channel.GVLK)
    if key.version not in SUPPORTED_VERSIONS:
        raise InvalidKey(
            f"this GVLK has format version {key.version}, but this program knows only version "
            f"{KEY_VERSION}: unknown version",
            {"version": key.version},
        )
    vendor_tag, _, product_tag = _gvlk_tags(key)
    if vendor_tag != _vendor_tag(vendor_id):
        raise InvalidKey("this GVLK is for another vendor's product", {"reason": "vendor"})
    if product_tag != _product_tag(vendor_id, product):
        raise InvalidKey("this GVLK is for another product", {"reason": "product"})


def check_gvlk(key: ProductKey, vendor_id: str, group: str, product: str) -> None:
    """Return if ``key`` is the GVLK of ``product`` in ``group`` of ``vendor_id``; otherwise raise
    :class:`~volact.core.errors.InvalidKey` naming what differs (channel, vendor, product, group).
    """
    _check_gvlk_vendor_and_product(key, vendor_id, product)
    if _gvlk_tags(key)[1] != _group_tag(vendor_id, group):
        raise InvalidKey("this GVLK is for another product group", {"reason": "group"})


def gvlk_group_matches(key: ProductKey, vendor_id: str, product: str, groups: Iterable[str]) -> str:
    """Return the group among ``groups`` that the GVLK of ``product`` belongs to.

    Raises :class:`~volact.core.errors.InvalidKey` if the key is not a GVLK of this vendor and
    product, or its group is not among ``groups``. Group tags have 32 bits, so two of a vendor's
    groups could share one (odds about 1 in 4 billion a pair); the first match in ``groups``
    order wins. ``groups`` given as one string is a mistake and raises ``TypeError``.
    """
    if isinstance(groups, str):
        raise TypeError("groups must be a collection of group ids, not one string")
    _check_gvlk_vendor_and_product(key, vendor_id, product)
    group_tag = _gvlk_tags(key)[1]
    for group in groups:
        if _group_tag(vendor_id, group) == group_tag:
            return group
    raise InvalidKey(
        "this GVLK is for a product group that is not served here", {"reason": "group"}
    )


def make_secret_key(channel: Channel, random_bytes: bytes | bytearray) -> ProductKey:
    """A new host key or MAK whose 96-bit body is the first :data:`SECRET_RANDOM_BYTES` (12)
    bytes of ``random_bytes``, which the caller draws from a secure source (``os.urandom``).

    Raises ``ValueError`` for the GVLK channel (GVLKs come from :func:`make_gvlk`) or for fewer
    than 12 bytes, and ``TypeError`` if ``random_bytes`` is not bytes.
    """
    if not channel.is_secret:
        raise ValueError("a GVLK is not random: make it with make_gvlk()")
    if not isinstance(random_bytes, bytes | bytearray):
        raise TypeError(f"random_bytes must be bytes, not {type(random_bytes).__name__}")
    if len(random_bytes) < SECRET_RANDOM_BYTES:
        raise ValueError(
            f"a {channel.label} needs at least {SECRET_RANDOM_BYTES} random bytes "
            f"({BODY_BITS} bits); got {len(random_bytes)}"
        )
    body = int.from_bytes(random_bytes[:SECRET_RANDOM_BYTES], "big")
    return ProductKey(channel, KEY_VERSION, body)
