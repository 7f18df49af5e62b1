"""Starting `volact host serve` when the admin listener cannot listen: one line, exit 1, and
nothing served (the admin socket is bound and listening before the activation port opens)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.host.conftest import volact
from tests.host.helpers import CertifiedHost, make_host
from tests.ports import free_port
from volact.core.errors import ConfigurationError
from volact.host.admin.listener import AdminOptions, check_ports
from volact.host.admin.token import ensure_token


@pytest.fixture
def tokened(tmp_path: Path) -> CertifiedHost:
    host = make_host(tmp_path / "host", int(time.time()))
    ensure_token(host.directory)
    return host


@contextmanager
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield int(busy.getsockname()[1])


def refuses(host: CertifiedHost, *flags: str) -> str:
    """Run serve with ``flags``: it must exit 1 with one line and serve nothing; the line."""
    database = host.directory / "host.db"
    existed = database.exists()
    done = volact("host", "serve", "--dir", str(host.directory), *flags, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""  # no "volact host listening on …", no admin line either
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # no log of a start, no traceback
    assert database.exists() == existed  # the store was never opened
    return lines[0]


@pytest.mark.slow
def test_an_admin_port_in_use_is_one_line_and_the_activation_port_never_opens(
    tokened: CertifiedHost,
) -> None:
    activation = free_port()
    with busy_port() as taken:
        line = refuses(
            tokened, "--bind", "127.0.0.1", "--port", str(activation), "--admin-port", str(taken)
        )
        assert line == (
            f"bad_request: cannot listen on 127.0.0.1 port {taken} for the admin listener: "
            "Address already in use (choose another --admin-port or --admin-bind, or start it "
            "without one: --no-admin)"
        )


@pytest.mark.slow
def test_the_admin_listener_cannot_take_the_activation_port(tokened: CertifiedHost) -> None:
    port = str(free_port())
    expected = (
        f"bad_request: the admin listener cannot share the activation port {port}; give "
        "--admin-port another port (the default is 7690)"
    )
    assert refuses(tokened, "--bind", "127.0.0.1", "--port", port, "--admin-port", port) == expected
    # host.json's port (7688 here) counts when --port is not given; 0.0.0.0 covers 127.0.0.1.
    assert refuses(tokened, "--admin-port", "7688") == expected.replace(port, "7688")


@pytest.mark.slow
def test_a_clash_the_check_cannot_see_is_still_one_line_before_anything_serves(
    tokened: CertifiedHost,
) -> None:
    # "localhost" is 127.0.0.1, which the names do not show: the admin socket already listens
    # there, so the activation port's bind fails, before the host starts (before this, both
    # were bound, the activation port listened, and the admin listener said it listened and
    # silently did not).
    port = str(free_port())
    line = refuses(tokened, "--bind", "localhost", "--port", port, "--admin-port", port)
    assert line == (
        f"bad_request: cannot listen on localhost port {port}: Address already in use "
        "(choose another --port or --bind)"
    )


@pytest.mark.parametrize(
    ("admin_bind", "bind", "clash"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "0.0.0.0", True),
        ("0.0.0.0", "192.0.2.1", True),
        ("::", "127.0.0.1", True),
        ("127.0.0.1", "192.0.2.1", False),
    ],
)
def test_check_ports(admin_bind: str, bind: str, clash: bool, tmp_path: Path) -> None:
    options = AdminOptions(tmp_path, admin_bind, 7700)
    check_ports(options, bind, 7701)  # other ports never clash
    check_ports(AdminOptions(tmp_path, admin_bind, 0), bind, 0)  # nor free ones picked
    if clash:
        with pytest.raises(ConfigurationError, match="cannot share the activation port 7700"):
            check_ports(options, bind, 7700)
    else:
        check_ports(options, bind, 7700)
