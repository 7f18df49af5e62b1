"""Unit tests of the DNS adapter's parsing: key files, server addresses, resolver config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from volact.core.errors import BadRequest
from volact.net.dns import (
    DNSServer,
    TSIGKey,
    format_tsig_key,
    fqdn_suffix,
    parse_tsig_key_file,
    resolve_address,
    search_domains,
    split_host_port,
    zone_lines,
)

SECRET = "PuBo5uf/UJBFqxt3xmmQOhrwBf20CVkU30++PLg7Sro="
KEYGEN_OUTPUT = f'key "volact-host" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n'


def test_parse_key_as_tsig_keygen_writes_it() -> None:
    key = parse_tsig_key_file(KEYGEN_OUTPUT)
    assert key == TSIGKey("volact-host", "hmac-sha256", SECRET)
    assert SECRET not in repr(key)
    assert parse_tsig_key_file(format_tsig_key(key)) == key


def test_parse_key_made_by_the_real_tsig_keygen() -> None:
    text = subprocess.run(
        ["tsig-keygen", "-a", "hmac-sha512", "host1.corp.example"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    key = parse_tsig_key_file(text)
    assert (key.name, key.algorithm) == ("host1.corp.example", "hmac-sha512")


def test_parse_key_with_comments_unquoted_name_and_one_line() -> None:
    text = (
        "# made for the publisher\n// another comment\n/* block\ncomment */\n"
        f'key Volact-Host. {{ algorithm HMAC-SHA1; secret "{SECRET}"; }};'
    )
    assert parse_tsig_key_file(text) == TSIGKey("volact-host", "hmac-sha1", SECRET)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no 'key"),
        ("this is not a key file", "no 'key"),
        (KEYGEN_OUTPUT + KEYGEN_OUTPUT.replace("volact-host", "second"), "2 keys"),
        (KEYGEN_OUTPUT.replace("\talgorithm hmac-sha256;\n", ""), "no algorithm"),
        (KEYGEN_OUTPUT.replace("hmac-sha256", "hmac-sha999"), "unsupported algorithm"),
        (KEYGEN_OUTPUT.replace(f'\tsecret "{SECRET}";\n', ""), "no secret"),
        (KEYGEN_OUTPUT.replace(SECRET, SECRET[:-1] + "!"), "not valid base64"),
        (KEYGEN_OUTPUT.replace("volact-host", "bad name!"), "not a valid DNS name"),
        (KEYGEN_OUTPUT.replace("algorithm", "algorithm = "), "cannot read"),
    ],
)
def test_bad_key_files_say_what_is_wrong_without_the_secret(text: str, says: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_tsig_key_file(text)
    assert says in raised.value.message
    assert SECRET not in raised.value.message
    assert SECRET[:-1] not in str(raised.value.details)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("192.0.2.53", "192.0.2.53", 53),
        ("192.0.2.53:5353", "192.0.2.53", 5353),
        ("[2001:db8::53]:5353", "2001:db8::53", 5353),
        ("[2001:db8::53]", "2001:db8::53", 53),
        ("2001:db8::53", "2001:db8::53", 53),
        (" 127.0.0.1:1 ", "127.0.0.1", 1),
    ],
)
def test_dns_server_parses(text: str, host: str, port: int) -> None:
    server = DNSServer.parse(text)
    assert (server.host, server.port) == (host, port)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no host"),
        ("ns1.corp.example", "must be an IP address"),
        ("192.0.2.53:0", "from 1 to 65535"),
        ("192.0.2.53:65536", "from 1 to 65535"),
        ("192.0.2.53:dns", "from 1 to 65535"),
        ("[2001:db8::53", "missing ']'"),
        ("[2001:db8::53]5353", "expected ':PORT'"),
        ("999.1.1.1", "must be an IP address"),
    ],
)
def test_bad_dns_server_is_a_clear_bad_request(text: str, says: str) -> None:
    with pytest.raises(BadRequest) as raised:
        DNSServer.parse(text)
    assert says in raised.value.message


def test_dns_server_prints_as_it_is_written() -> None:
    assert str(DNSServer.parse("[::1]:5353")) == "[::1]:5353"
    assert str(DNSServer.parse("10.0.0.1")) == "10.0.0.1:53"


def test_split_host_port_defaults_the_port() -> None:
    assert split_host_port("kms1.corp.example", 7688) == ("kms1.corp.example", 7688)
    assert split_host_port("kms1.corp.example:8000", 7688) == ("kms1.corp.example", 8000)


def test_search_domains_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.0.0.1\ndomain old.example\nsearch Corp.Example. lab.example\n")
    assert search_domains(conf) == ["corp.example", "lab.example"]
    conf.write_text("search corp.example\ndomain only.example # the last line wins\n")
    assert search_domains(conf) == ["only.example"]
    conf.write_text("nameserver 10.0.0.1\n")
    assert search_domains(conf) == []
    assert search_domains(tmp_path / "missing") == []


def test_fqdn_suffix() -> None:
    assert fqdn_suffix("pc1.corp.example") == "corp.example"
    assert fqdn_suffix("pc1.corp.example.") == "corp.example"
    assert fqdn_suffix("pc1") is None
    assert fqdn_suffix("pc1.localdomain") is None


def test_zone_lines_for_admins() -> None:
    assert zone_lines(
        ["corp.example", "Lab.Example."], target="kms1.corp.example", port=7688, weight=10
    ) == [
        "_volact._tcp.corp.example. 3600 IN SRV 0 10 7688 kms1.corp.example.",
        "_volact._tcp.lab.example. 3600 IN SRV 0 10 7688 kms1.corp.example.",
    ]


def test_resolve_address_needs_no_dns_for_ips_and_localhost() -> None:
    closed = DNSServer("127.0.0.1", 9)  # Never asked: these resolve without DNS.
    assert resolve_address("192.0.2.7", server=closed, timeout=0.1) == ["192.0.2.7"]
    assert resolve_address("[::1]", server=closed, timeout=0.1) == ["::1"]
    assert resolve_address("localhost.", server=closed, timeout=0.1) == ["127.0.0.1", "::1"]


def test_a_secret_with_comment_like_characters_is_kept_whole() -> None:
    secret = "ar//////cnJycnJycnJycnJycnJycnJycnJycnJycnI="  # "//" inside, as base64 can be
    text = f'key "k" {{ algorithm hmac-sha256; secret "{secret}"; }}; // trailing comment'
    assert parse_tsig_key_file(text).secret == secret


def test_the_sdk_modules_do_not_import_dnspython_until_dns_is_used() -> None:
    # dnspython takes ~0.1 s to import; `volact client status` must not pay for it.
    code = (
        "import sys, volact.client.discovery, volact.host.publisher, volact.net.dns\n"
        "assert not [m for m in sys.modules if m == 'dns' or m.startswith('dns.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("text", [":::bad", "a b", "-x", "x..y", "ho$t", "[zz]:53"])
def test_split_host_port_refuses_what_is_not_a_host(text: str) -> None:
    with pytest.raises(BadRequest, match="not a host name or IP address"):
        split_host_port(text, 7688)
