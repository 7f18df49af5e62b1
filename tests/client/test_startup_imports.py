"""What an app's start-up with the SDK imports (issue 18): ``import volact.client``, then
``License.open(...)`` and the first ``status()`` — each in a fresh interpreter, read from its
``sys.modules``. Activating, diagnosing, discovery, the transport and the server side are
imported only when an app calls them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.factories import T0
from volact.client import State

from .conftest import World, clean_env

# Neither the import nor the first status() may need these: the server side and its packages,
# the network stack, processes, and the SDK's own activation/diagnosis/discovery code.
NOT_AT_STARTUP = (
    # packages of the extras (or of the tests) the SDK does not use
    "httpx",
    "starlette",
    "uvicorn",
    "uvloop",
    "psycopg",
    "psycopg_pool",
    "rich",
    "click",
    "nacl",
    "dns",
    "platformdirs",  # only on Windows and macOS
    # the standard library's network stack and process control
    "http",
    "http.client",
    "ssl",
    "socket",
    "email",
    "urllib.request",
    "subprocess",
    "asyncio",
    "concurrent.futures",
    "logging",
    # what only signing, writing or new random values need (orjson loads uuid and platform)
    "orjson",
    "uuid",
    "platform",
    "secrets",
    # volact beyond the status path
    "volact.client.activation",
    "volact.client.diagnosis",
    "volact.client.discovery",
    "volact.client.mak",
    "volact.client.renewal",
    "volact.core.batch",
    "volact.core.glossary",
    "volact.core.offline",
    "volact.core.protocol",
    "volact.core.revocation",  # no revocation list held
    "volact.core.srv",
    "volact.net",
    "volact.net.dns",
    "volact.net.transport",
    "volact.cli",
    "volact.host",
    "volact.authority",
    "volact.store",
    "volact.sql",
    "volact.web",
)

REPORT = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def _modules_after(code: str) -> set[str]:
    """The modules loaded in a fresh interpreter after running ``code`` (this tree's volact)."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_volact_client_leaves_out_what_the_status_path_does_not_need() -> None:
    loaded = _modules_after("import volact.client")
    assert "volact.client.license" in loaded and "volact.crypto" in loaded
    assert sorted(loaded.intersection(NOT_AT_STARTUP)) == []


def test_the_first_status_of_an_activated_product_imports_none_of_it(world: World) -> None:
    world.add_host("h1.corp.example:7688", threshold=1)
    lic = world.machine("pc1")
    lic.install_key()
    lic.configure(manual_host="h1.corp.example:7688")
    assert lic.activate().state is State.LICENSED
    app = textwrap.dedent(
        f"""
        from volact.client import License
        lic = License.open(
            state_dir={str(lic.state.directory)!r}, machine_id="machine-id-pc1", clock=lambda: {T0}
        )
        status = lic.status()
        cmid = {lic.status().cmid!r}
        assert (status.state, status.usable, status.cmid) == ("licensed", True, cmid)
        """
    )
    loaded = _modules_after(app)
    assert sorted(loaded.intersection(NOT_AT_STARTUP)) == []


def test_the_names_imported_on_first_use_are_still_the_packages() -> None:
    from volact import client
    from volact.client.activation import Attempt
    from volact.client.diagnosis import Diagnosis

    assert (client.Attempt, client.Diagnosis) == (Attempt, Diagnosis)
    assert {"Attempt", "Diagnosis"} <= set(client.__all__)
    loaded = _modules_after(
        "from volact.client import Attempt, Diagnosis\n"
        "assert Attempt.__module__ == 'volact.client.activation'"
    )
    assert {"volact.client.activation", "volact.client.diagnosis"} <= loaded
    with pytest.raises(AttributeError, match="NoSuchName"):
        client.NoSuchName  # noqa: B018
