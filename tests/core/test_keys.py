"""Product keys (SPEC §1): encoding, checksum proofs, GVLK checks, secret keys and vectors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volact.core import keys
from volact.core.errors import InvalidKey
from volact.core.keys import (
    ALPHABET,
    KEY_VERSION,
    Channel,
    ProductKey,
    check_gvlk,
    gvlk_group_matches,
    make_gvlk,
    make_secret_key,
    normalise_key,
    parse_key,
    require_channel,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "keys.json").read_text(encoding="utf-8"))
CANONICAL = re.compile(rf"^[{ALPHABET}]{{5}}(-[{ALPHABET}]{{5}}){{4}}$")
SAMPLE_KEYS = [
    make_gvlk("acme", "office-2026", "writer-2026"),
    make_secret_key(Channel.HOST, bytes(12)),
    make_secret_key(Channel.MAK, bytes(range(1, 13))),
    make_secret_key(Channel.MAK, b"\xff" * 12),
]
SECRET_CHANNELS = [Channel.HOST, Channel.MAK]
no_database = settings(database=None, deadline=None)


def raw_key(version: int, channel_code: int, body: int) -> str:
    """A key with a valid checksum around any fields."""
    return keys._encode(
        (version << keys.VERSION_SHIFT) | (channel_code << keys.CHANNEL_SHIFT) | body
    )


def invalid(text: object) -> InvalidKey:
    with pytest.raises(InvalidKey) as caught:
        parse_key(text)  # type: ignore[arg-type]
    return caught.value


def compact(text: str) -> str:
    return text.replace("-", "")


# --- the alphabet, the layout and the checksum arithmetic ---------------------------------------


def test_alphabet_has_24_distinct_symbols_without_vowels_or_look_alikes() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 24
    assert ALPHABET.upper() == ALPHABET
    assert ALPHABET.isascii()
    assert not set(ALPHABET) & set("AEIOU0O1IL5SZ")


def test_layout_fits_in_23_data_symbols() -> None:
    top_bit = keys.VERSION_SHIFT + keys.VERSION_BITS
    assert 1 << top_bit <= keys.BASE**keys.DATA_LENGTH
    assert keys.GVLK_BODY_BITS <= keys.BODY_BITS
    assert keys.SECRET_RANDOM_BYTES * 8 == keys.BODY_BITS >= 80


def test_check_modulus_is_the_largest_prime_that_fits_in_two_symbols() -> None:
    def is_prime(n: int) -> bool:
        return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))

    modulus = keys.CHECK_MODULUS
    assert is_prime(modulus)
    assert keys.BASE - 1 < modulus <= keys.BASE**keys.CHECK_LENGTH
    assert not any(is_prime(n) for n in range(modulus + 1, keys.BASE**2 + 1))


# The checksum is linear: a typo changes N (the key as a base-24 number) by an amount that does not
# depend on the rest of the key. So these loops over every position and every symbol difference
# prove the claims for *every* key, not only for sampled ones.
DIFFERENCES = [d for d in range(-23, 24) if d]
POSITIONS = range(keys.KEY_LENGTH)  # counted from the right: weight 24**k


def test_every_single_substitution_is_caught_for_every_key() -> None:
    for k in POSITIONS:
        for d in DIFFERENCES:
            assert (d * keys.BASE**k) % keys.CHECK_MODULUS != 0


def test_every_neighbour_swap_is_caught_for_every_key() -> None:
    for k in range(keys.KEY_LENGTH - 1):
        weight, neighbour = keys.BASE**k, keys.BASE ** (k + 1)
        assert weight % keys.CHECK_MODULUS != neighbour % keys.CHECK_MODULUS
        for d in DIFFERENCES:
            assert (d * (neighbour - weight)) % keys.CHECK_MODULUS != 0


def test_twin_errors_and_jump_transpositions_are_caught_for_every_key() -> None:
    for k in range(keys.KEY_LENGTH - 2):
        for d in DIFFERENCES:
            twin = d * (keys.BASE ** (k + 1) + keys.BASE**k)
            jump = d * (keys.BASE ** (k + 2) - keys.BASE**k)
            assert twin % keys.CHECK_MODULUS != 0
            assert jump % keys.CHECK_MODULUS != 0


@pytest.mark.parametrize("key", SAMPLE_KEYS, ids=lambda key: key.channel.value)
def test_exhaustive_substitutions_on_real_keys(key: ProductKey) -> None:
    text = compact(key.text)
    tried = 0
    for position in range(keys.KEY_LENGTH):
        for symbol in ALPHABET:
            if symbol == text[position]:
                continue
            typo = text[:position] + symbol + text[position + 1 :]
            assert "probably a typo" in invalid(typo).message
            tried += 1
    assert tried == 25 * 23


@pytest.mark.parametrize("key", SAMPLE_KEYS, ids=lambda key: key.channel.value)
def test_exhaustive_neighbour_swaps_on_real_keys(key: ProductKey) -> None:
    text = compact(key.text)
    tried = 0
    for position in range(keys.KEY_LENGTH - 1):
        left, right = text[position], text[position + 1]
        if left == right:
            continue  # swapping equal symbols is no change
        swapped = text[:position] + right + left + text[position + 2 :]
        assert "probably a typo" in invalid(swapped).message
        tried += 1
    assert tried >= 15


def test_check_value_is_canonical() -> None:
    # check symbols 571..575 would also make N divisible by 571 for small check values; only
    # the value below 571 is accepted, so every key has exactly one text.
    data = (1 << keys.VERSION_SHIFT) | (3 << keys.CHANNEL_SHIFT) | 12345
    check = keys._check_value(data)
    assert check < keys.CHECK_MODULUS
    assert (data * 576 + check) % keys.CHECK_MODULUS == 0
    for data in range(2000):
        assert 0 <= keys._check_value(data) < keys.CHECK_MODULUS
    # Find a key whose check value has a second, non-canonical spelling, and refuse it.
    data = next(d for d in range(10_000) if keys._check_value(d) < 576 - keys.CHECK_MODULUS)
    number = data * 576 + keys._check_value(data) + keys.CHECK_MODULUS
    symbols = []
    for _ in range(keys.KEY_LENGTH):
        number, value = divmod(number, keys.BASE)
        symbols.append(ALPHABET[value])
    with pytest.raises(InvalidKey, match="checksum"):
        normalise_key("".join(reversed(symbols)))


# --- round trips and normalisation --------------------------------------------------------------


@pytest.mark.parametrize("key", SAMPLE_KEYS, ids=lambda key: key.channel.value)
def test_round_trip(key: ProductKey) -> None:
    assert CANONICAL.match(key.text)
    assert str(key) == key.text
    assert f"{key}" == key.text
    assert parse_key(key.text) == key
    assert parse_key(key.text).text == key.text
    assert key.version == KEY_VERSION


def test_round_trip_of_every_channel_and_extreme_bodies() -> None:
    for channel in Channel:
        top = keys.GVLK_BODY_BITS if channel is Channel.GVLK else keys.BODY_BITS
        for body in (0, 1, (1 << top) - 1):
            key = ProductKey(channel, KEY_VERSION, body)
            assert parse_key(key.text) == key


def test_version_1_keys_start_with_b_and_gvlks_with_a_fixed_prefix() -> None:
    for key in SAMPLE_KEYS:
        assert key.text.startswith("B")
    for vector in VECTORS["gvlk"]:
        assert vector["gvlk"].startswith("BV9CD-")


@pytest.mark.parametrize(
    "typed",
    [
        "{key}",
        "{lower}",
        "{compact}",
        "{lower_compact}",
        "  {key}  ",
        "{key}\n",
        "{spaced}",
        "{key_with_en_dashes}",
        "\ufeff{compact}",
        "{odd_dashes}",
        "\t{lower}\r\n",
    ],
)
def test_normalisation_forgives_case_spaces_and_dashes(typed: str) -> None:
    key = SAMPLE_KEYS[2]
    text = key.text
    variants = {
        "key": text,
        "lower": text.lower(),
        "compact": compact(text),
        "lower_compact": compact(text).lower(),
        "spaced": text.replace("-", " - "),
        "key_with_en_dashes": text.replace("-", "\u2013"),
        "odd_dashes": compact(text)[:3] + "-" + compact(text)[3:17] + "--" + compact(text)[17:],
    }
    entered = typed.format(**variants)
    assert normalise_key(entered) == text
    assert parse_key(entered) == key


def test_input_of_exactly_the_maximum_length_is_read() -> None:
    text = SAMPLE_KEYS[0].text
    padded = text + " " * (keys.MAX_INPUT_LENGTH - len(text))
    assert len(padded) == keys.MAX_INPUT_LENGTH
    assert parse_key(padded) == SAMPLE_KEYS[0]


def test_normalise_accepts_unknown_versions_and_channels_but_parse_does_not() -> None:
    future = raw_key(2, 7, 99)
    assert normalise_key(future.lower()) == future
    with pytest.raises(InvalidKey, match="unknown version"):
        parse_key(future)


# --- every error path -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "NoneType"), (12345, "int"), (b"BCDFG", "bytes"), (["B"] * 25, "list")],
)
def test_non_text_is_an_invalid_key(value: object, type_name: str) -> None:
    error = invalid(value)
    assert error.message == f"a product key must be text, not {type_name}"
    assert error.details == {"type": type_name}
    assert error.code == "invalid_key"
    with pytest.raises(InvalidKey):
        normalise_key(value)  # type: ignore[arg-type]


def test_too_long_input_is_refused_before_any_other_work() -> None:
    error = invalid("O" * 10_000)  # would be a bad character, but length is checked first
    assert "too long" in error.message
    assert "10000 characters" in error.message
    assert error.details == {"length": 10_000, "max_length": keys.MAX_INPUT_LENGTH}


@pytest.mark.parametrize("text", ["", "   ", "-----", "\u2013 \u00a0"])
def test_empty_key(text: str) -> None:
    error = invalid(text)
    assert error.message == "the product key is empty"
    assert error.details == {"length": 0, "expected_length": 25}


@pytest.mark.parametrize("length", [1, 5, 24, 26, 40])
def test_wrong_length_says_how_many_characters_there_were(length: int) -> None:
    text = (compact(SAMPLE_KEYS[0].text) * 2)[:length]
    error = invalid(text)
    assert error.message == (
        f"a product key has 25 characters (not counting dashes and spaces); this one has {length}"
    )
    assert error.details == {"length": length, "expected_length": 25}


def replace_at(position: int, char: str) -> str:
    """SAMPLE_KEYS[0] with the character at 1-based ``position`` (dashes aside) replaced."""
    text = compact(SAMPLE_KEYS[0].text)
    return text[: position - 1] + char + text[position:]


@pytest.mark.parametrize(
    ("char", "hint"),
    [
        ("0", "keys use neither 0 nor O, which look alike"),
        ("O", "keys use neither 0 nor O, which look alike"),
        ("o", "keys use neither 0 nor O, which look alike"),
        ("1", "keys use none of 1, I and L, which look alike"),
        ("I", "keys use none of 1, I and L, which look alike"),
        ("l", "keys use none of 1, I and L, which look alike"),
        ("5", "keys use neither 5 nor S, which look alike"),
        ("s", "keys use neither 5 nor S, which look alike"),
        ("Z", "it is a look-alike of 2, and keys use only the 2: did you mean 2?"),
        ("u", "it is a look-alike of V, and keys use only the V: did you mean V?"),
    ],
)
def test_look_alike_characters_are_named(char: str, hint: str) -> None:
    error = invalid(replace_at(7, char))
    assert error.message == (
        f"character 7 of the product key, {char!r}, is not used in keys: {hint}"
    )
    assert error.details == {"position": 7, "look_alike": True}


@pytest.mark.parametrize(("char", "position"), [("A", 1), ("e", 13), ("N", 25), ("!", 2)])
def test_other_characters_outside_the_alphabet(char: str, position: int) -> None:
    error = invalid(replace_at(position, char))
    assert error.message == (
        f"character {position} of the product key, {char!r}, is not used in keys: keys use "
        f"only {ALPHABET}"
    )
    assert error.details == {"position": position, "look_alike": False}


@pytest.mark.parametrize("char", ["\u0412", "\uff22", "\u00df", "\u0131"])
def test_non_ascii_characters(char: str) -> None:
    # Cyrillic В, full-width B, ß (upper-cases to two letters) and dotless ı (to I).
    error = invalid(replace_at(3, char))
    assert error.message == (
        f"character 3 of the product key, {char!r}, is not used in keys: it is not a plain ASCII "
        "letter or digit (was the key copied from a document?)"
    )
    assert error.details == {"position": 3, "look_alike": False}


def test_the_position_counts_key_characters_only() -> None:
    text = SAMPLE_KEYS[0].text  # the 7th key character is the 8th of the text (after a dash)
    error = invalid(text[:7] + "O" + text[8:])
    assert error.details["position"] == 7


def test_checksum_mismatch_says_probably_a_typo() -> None:
    text = compact(SAMPLE_KEYS[1].text)
    typo = text[:-1] + ("B" if text[-1] != "B" else "C")
    error = invalid(typo)
    assert error.message == (
        "the product key's checksum does not match: probably a typo; check each character"
    )
    assert error.details == {"reason": "checksum"}
    with pytest.raises(InvalidKey, match="probably a typo"):
        normalise_key(typo)


@pytest.mark.parametrize("version", [0, 2, 31])
def test_unknown_version(version: int) -> None:
    error = invalid(raw_key(version, 3, 1))
    assert error.message == (
        f"this product key has format version {version}, but this program knows only version "
        "1: unknown version (a newer volact may read it)"
    )
    assert error.details == {"version": version}


def test_the_largest_text_decodes_to_an_unknown_version() -> None:
    error = invalid("99999-99999-99999-99999-999VJ")
    assert error.details == {"version": 43}


@pytest.mark.parametrize("code", [0, 4, 15])
def test_unknown_channel(code: int) -> None:
    error = invalid(raw_key(1, code, 0))
    assert error.message == (
        f"this product key has an unknown channel marker ({code}); keys are GVLKs, host keys "
        "or MAKs"
    )
    assert error.details == {"channel_code": code}


@pytest.mark.parametrize("bit", [80, 95])
def test_gvlk_with_reserved_bits(bit: int) -> None:
    error = invalid(raw_key(1, 1, 1 << bit))
    assert error.message == "this GVLK has reserved bits set, so it was not made by volact"
    assert error.details == {"reason": "reserved_bits"}
    # The same bits are body bits for a host key.
    assert parse_key(raw_key(1, 2, 1 << bit)).body == 1 << bit


def test_error_details_are_json_and_never_hold_the_key() -> None:
    key = SAMPLE_KEYS[2]
    for text in (key.text[:-2], key.text[:-1] + "O", compact(key.text)[::-1]):
        error = invalid(text)
        dumped = json.dumps(error.to_dict())
        assert compact(key.text)[:10] not in dumped


# --- ProductKey ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "version", "body", "error", "match"),
    [
        ("mak", 1, 0, TypeError, "channel must be a Channel, not str"),
        (Channel.MAK, "1", 0, TypeError, "version must be an int, not str"),
        (Channel.MAK, True, 0, TypeError, "version must be an int, not bool"),
        (Channel.MAK, -1, 0, ValueError, r"version must be in 0\.\.31"),
        (Channel.MAK, 32, 0, ValueError, r"version must be in 0\.\.31"),
        (Channel.MAK, 1, 1.0, TypeError, "body must be an int, not float"),
        (Channel.MAK, 1, -1, ValueError, "a MAK body must fit in 96 bits"),
        (Channel.HOST, 1, 1 << 96, ValueError, "a host key body must fit in 96 bits"),
        (Channel.GVLK, 1, 1 << 80, ValueError, "a GVLK body must fit in 80 bits"),
    ],
)
def test_product_key_checks_its_fields(
    channel: Any, version: Any, body: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ProductKey(channel, version, body)


def test_product_key_is_frozen_and_hashable() -> None:
    key = SAMPLE_KEYS[1]
    with pytest.raises(AttributeError):
        key.body = 5  # type: ignore[misc]
    assert {key, parse_key(key.text)} == {key}


def test_repr_shows_the_serial_and_never_the_key() -> None:
    key = make_secret_key(Channel.MAK, bytes.fromhex("0f1e2d3c4b5a69788796a5b4"))
    shown = repr(key)
    assert shown == f"ProductKey(channel=Channel.MAK, version=1, serial={key.serial!r})"
    assert compact(key.text)[:5] not in shown
    assert str(key.body) not in shown
    assert f"{key.body:x}" not in shown


def test_serial_is_stable_distinct_and_reveals_nothing() -> None:
    serials = set()
    for key in SAMPLE_KEYS:
        serial = key.serial
        assert re.fullmatch(rf"{key.channel.value}-[0-9a-f]{{24}}", serial)
        assert serial == parse_key(key.text.lower()).serial
        assert f"{key.body:024x}" not in serial
        serials.add(serial)
    assert len(serials) == len(SAMPLE_KEYS)
    # Same body, different channel: different serial.
    assert ProductKey(Channel.HOST, 1, 7).serial[5:] != ProductKey(Channel.MAK, 1, 7).serial[4:]


def test_channel_labels_and_secrecy() -> None:
    assert [channel.label for channel in Channel] == ["GVLK", "host key", "MAK"]
    assert [channel.is_secret for channel in Channel] == [False, True, True]
    assert [channel.value for channel in Channel] == ["gvlk", "host", "mak"]


# --- channels ------------------------------------------------------------------------------------

CHANNEL_KEYS = {
    Channel.GVLK: SAMPLE_KEYS[0],
    Channel.HOST: SAMPLE_KEYS[1],
    Channel.MAK: SAMPLE_KEYS[2],
}


@pytest.mark.parametrize("actual", list(Channel), ids=lambda channel: channel.value)
@pytest.mark.parametrize("expected", list(Channel), ids=lambda channel: channel.value)
def test_require_channel(actual: Channel, expected: Channel) -> None:
    key = CHANNEL_KEYS[actual]
    if actual is expected:
        require_channel(key, expected)
        return
    with pytest.raises(InvalidKey) as caught:
        require_channel(key, expected)
    assert caught.value.message == f"this is a {actual.label}, not a {expected.label}"
    assert caught.value.details == {"channel": actual.value, "expected_channel": expected.value}


def test_require_channel_messages_read_well() -> None:
    with pytest.raises(InvalidKey, match=r"^this is a host key, not a MAK$"):
        require_channel(CHANNEL_KEYS[Channel.HOST], Channel.MAK)
    with pytest.raises(InvalidKey, match=r"^this is a MAK, not a GVLK$"):
        require_channel(CHANNEL_KEYS[Channel.MAK], Channel.GVLK)


# --- GVLKs -------------------------------------------------------------------------------------


def test_make_gvlk_is_deterministic_and_carries_the_tags() -> None:
    key = make_gvlk("acme", "office-2026", "writer-2026")
    assert key == make_gvlk("acme", "office-2026", "writer-2026")
    assert key.channel is Channel.GVLK
    assert key.version == KEY_VERSION
    assert keys._gvlk_tags(key) == (
        keys._vendor_tag("acme"),
        keys._group_tag("acme", "office-2026"),
        keys._product_tag("acme", "writer-2026"),
    )
    assert key.body < 1 << keys.GVLK_BODY_BITS


def test_gvlk_tags_are_bound_to_the_vendor_and_unambiguous() -> None:
    one = keys._gvlk_tags(make_gvlk("acme", "office", "writer"))
    other = keys._gvlk_tags(make_gvlk("globex", "office", "writer"))
    assert all(a != b for a, b in zip(one, other, strict=True))
    # Length prefixes: moving a boundary between parts changes the tag.
    assert keys._group_tag("ab", "c") != keys._group_tag("a", "bc")
    # Kinds are separated: the same string as group and as product gives different tags.
    assert keys._group_tag("acme", "x") != keys._product_tag("acme", "x")


def test_gvlk_tags_hash_lone_surrogates() -> None:
    key = make_gvlk("acme", "office", "\ud800")
    with pytest.raises(InvalidKey, match="another product"):
        check_gvlk(key, "acme", "office", "\udc00")


@pytest.mark.parametrize(
    ("vendor_id", "group", "product", "name"),
    [
        ("", "g", "p", "vendor_id"),
        ("v", "", "p", "group"),
        ("v", "g", "", "product"),
        (None, "g", "p", "vendor_id"),
        ("v", 3, "p", "group"),
    ],
)
def test_make_gvlk_refuses_empty_ids(vendor_id: Any, group: Any, product: Any, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be a non-empty string$"):
        make_gvlk(vendor_id, group, product)


def test_check_gvlk_accepts_its_product() -> None:
    key = make_gvlk("acme", "office-2026", "writer-2026")
    check_gvlk(key, "acme", "office-2026", "writer-2026")
    check_gvlk(parse_key(key.text.lower()), "acme", "office-2026", "writer-2026")


@pytest.mark.parametrize(
    ("vendor_id", "group", "product", "message", "reason"),
    [
        (
            "globex",
            "office-2026",
            "writer-2026",
            "this GVLK is for another vendor's product",
            "vendor",
        ),
        ("acme", "office-2026", "sheets-2026", "this GVLK is for another product", "product"),
        ("acme", "office-2027", "writer-2026", "this GVLK is for another product group", "group"),
        ("", "", "", "this GVLK is for another vendor's product", "vendor"),
    ],
)
def test_check_gvlk_names_what_differs(
    vendor_id: str, group: str, product: str, message: str, reason: str
) -> None:
    key = make_gvlk("acme", "office-2026", "writer-2026")
    with pytest.raises(InvalidKey) as caught:
        check_gvlk(key, vendor_id, group, product)
    assert caught.value.message == message
    assert caught.value.details == {"reason": reason}


@pytest.mark.parametrize("channel", SECRET_CHANNELS, ids=lambda channel: channel.value)
def test_check_gvlk_refuses_other_channels(channel: Channel) -> None:
    with pytest.raises(InvalidKey, match=f"^this is a {channel.label}, not a GVLK$"):
        check_gvlk(CHANNEL_KEYS[channel], "acme", "office-2026", "writer-2026")
    with pytest.raises(InvalidKey, match=f"^this is a {channel.label}, not a GVLK$"):
        gvlk_group_matches(CHANNEL_KEYS[channel], "acme", "writer-2026", ["office-2026"])


def test_check_gvlk_refuses_unknown_versions() -> None:
    good = make_gvlk("acme", "office-2026", "writer-2026")
    future = ProductKey(Channel.GVLK, 2, good.body)
    with pytest.raises(InvalidKey) as caught:
        check_gvlk(future, "acme", "office-2026", "writer-2026")
    assert caught.value.message == (
        "this GVLK has format version 2, but this program knows only version 1: unknown version"
    )
    assert caught.value.details == {"version": 2}


def test_gvlk_group_matches_returns_the_group() -> None:
    key = make_gvlk("acme", "office-2026", "writer-2026")
    groups = ["design-2026", "office-2026", "office-2027"]
    assert gvlk_group_matches(key, "acme", "writer-2026", groups) == "office-2026"
    assert gvlk_group_matches(key, "acme", "writer-2026", iter(groups)) == "office-2026"
    assert gvlk_group_matches(key, "acme", "writer-2026", ("office-2026",)) == "office-2026"


@pytest.mark.parametrize(
    ("vendor_id", "product", "groups", "message"),
    [
        ("acme", "writer-2026", [], "this GVLK is for a product group that is not served here"),
        (
            "acme",
            "writer-2026",
            ["office-2027", "design-2026"],
            "this GVLK is for a product group that is not served here",
        ),
        ("acme", "sheets-2026", ["office-2026"], "this GVLK is for another product"),
        ("globex", "writer-2026", ["office-2026"], "this GVLK is for another vendor's product"),
    ],
)
def test_gvlk_group_matches_refuses(
    vendor_id: str, product: str, groups: list[str], message: str
) -> None:
    key = make_gvlk("acme", "office-2026", "writer-2026")
    with pytest.raises(InvalidKey) as caught:
        gvlk_group_matches(key, vendor_id, product, groups)
    assert caught.value.message == message


def test_gvlk_group_matches_refuses_one_string_as_groups() -> None:
    key = make_gvlk("acme", "office-2026", "writer-2026")
    with pytest.raises(TypeError, match="not one string"):
        gvlk_group_matches(key, "acme", "writer-2026", "office-2026")


# --- secret keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", SECRET_CHANNELS, ids=lambda channel: channel.value)
def test_make_secret_key_uses_the_first_12_bytes(channel: Channel) -> None:
    random_bytes = bytes(range(100, 120))
    key = make_secret_key(channel, random_bytes)
    assert key.channel is channel
    assert key.version == KEY_VERSION
    assert key.body == int.from_bytes(random_bytes[:12], "big")
    assert make_secret_key(channel, bytearray(random_bytes[:12])) == key
    assert parse_key(key.text) == key


@pytest.mark.parametrize("length", [0, 10, 11])
def test_make_secret_key_needs_12_bytes(length: int) -> None:
    with pytest.raises(
        ValueError, match=f"^a MAK needs at least 12 random bytes \\(96 bits\\); got {length}$"
    ):
        make_secret_key(Channel.MAK, bytes(length))


def test_make_secret_key_refuses_gvlks_and_non_bytes() -> None:
    with pytest.raises(ValueError, match="make_gvlk"):
        make_secret_key(Channel.GVLK, bytes(12))
    with pytest.raises(TypeError, match="random_bytes must be bytes, not str"):
        make_secret_key(Channel.HOST, "x" * 12)  # type: ignore[arg-type]


# --- test vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["gvlk"], ids=lambda vector: vector["product"])
def test_gvlk_vectors(vector: dict[str, str]) -> None:
    key = make_gvlk(vector["vendor_id"], vector["group"], vector["product"])
    assert key.text == vector["gvlk"]
    assert key.serial == vector["serial"]
    parsed = parse_key(vector["gvlk"])
    assert parsed == key
    check_gvlk(parsed, vector["vendor_id"], vector["group"], vector["product"])


@pytest.mark.parametrize("vector", VECTORS["secret"], ids=lambda vector: vector["random_hex"])
def test_secret_key_vectors(vector: dict[str, str]) -> None:
    channel = Channel(vector["channel"])
    key = make_secret_key(channel, bytes.fromhex(vector["random_hex"]))
    assert key.text == vector["key"]
    assert key.serial == vector["serial"]
    assert parse_key(vector["key"]) == key
    assert key.body == int.from_bytes(bytes.fromhex(vector["random_hex"]), "big")


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda vector: vector["error"])
def test_invalid_vectors(vector: dict[str, Any]) -> None:
    assert vector["error"] in invalid(vector["input"]).message


def test_vectors_cover_every_channel_and_many_failures() -> None:
    assert {vector["channel"] for vector in VECTORS["secret"]} == {"host", "mak"}
    assert len(VECTORS["gvlk"]) >= 5
    assert len(VECTORS["invalid"]) >= 20


# --- properties ---------------------------------------------------------------------------------

ids = st.text(min_size=1, max_size=40)
secret_keys = st.builds(
    make_secret_key, st.sampled_from(SECRET_CHANNELS), st.binary(min_size=12, max_size=32)
)
gvlks = st.builds(make_gvlk, ids, ids, ids)
any_key = st.one_of(secret_keys, gvlks)


@no_database
@given(vendor_id=ids, group=ids, product=ids)
def test_property_gvlk_round_trip_and_check(vendor_id: str, group: str, product: str) -> None:
    key = make_gvlk(vendor_id, group, product)
    parsed = parse_key(key.text)
    assert parsed == key
    check_gvlk(parsed, vendor_id, group, product)
    assert gvlk_group_matches(parsed, vendor_id, product, ["-", group]) in {"-", group}


@no_database
@given(channel=st.sampled_from(SECRET_CHANNELS), random_bytes=st.binary(min_size=12))
def test_property_secret_key_round_trip(channel: Channel, random_bytes: bytes) -> None:
    key = make_secret_key(channel, random_bytes)
    assert parse_key(key.text) == key
    assert parse_key(compact(key.text).lower()) == key
    assert normalise_key(" ".join(key.text)) == key.text


@no_database
@given(key=any_key, position=st.integers(0, 24), shift=st.integers(1, 23))
def test_property_any_single_change_is_rejected(key: ProductKey, position: int, shift: int) -> None:
    text = compact(key.text)
    symbol = ALPHABET[(ALPHABET.index(text[position]) + shift) % len(ALPHABET)]
    changed = text[:position] + symbol + text[position + 1 :]
    with pytest.raises(InvalidKey, match="probably a typo"):
        parse_key(changed)


@no_database
@given(key=any_key, position=st.integers(0, 23))
def test_property_any_neighbour_swap_is_rejected_or_no_change(
    key: ProductKey, position: int
) -> None:
    text = compact(key.text)
    swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    if swapped == text:
        assert parse_key(swapped) == key
    else:
        with pytest.raises(InvalidKey, match="probably a typo"):
            parse_key(swapped)


@no_database
@given(text=st.text(max_size=80))
def test_property_any_text_parses_or_raises_invalid_key(text: str) -> None:
    try:
        key = parse_key(text)
    except InvalidKey as error:
        json.dumps(error.to_dict())
    else:
        assert normalise_key(text) == key.text
