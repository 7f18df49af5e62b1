"""``volact demo``: the whole story in a temporary folder, on the embedded default (SQLite).

A vendor with a product, a host certified offline, a real ``volact host serve`` process on a free
port, and five client machines reaching the threshold one by one — with a live view of the count
and of each client's state — then ``volact client status`` and ``volact host status``.

Setup and the final status commands run as real ``volact`` processes, exactly as a person would
type them (each is printed first); the five clients are the SDK (``volact.client.License``) in
this process, each with its own state directory and machine identity.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from volact.core.errors import CountInsufficient, InternalError, VolactError

CLIENTS = 5
PRODUCT = "writer-2026"
GROUP = "office-2026"
STATE_STYLES = {
    "licensed": "bold green",
    "oob_grace": "yellow",
    "oot_grace": "yellow",
    "notification": "bold red",
    "unlicensed": "dim",
}


@dataclass
class ClientRow:
    name: str
    cmid: str = ""
    state: str = "unlicensed"
    note: str = "not installed"


class Demo:
    def __init__(self, root: Path, console: Console, pause: float) -> None:
        self.root = root
        self.console = console
        self.pause = pause
        self.env = {
            **os.environ,
            "VOLACT_VENDOR_DIR": str(root / "vendor"),
            "VOLACT_HOST_DIR": str(root / "host"),
        }
        self.env.pop("VOLACT_STATE_DIR", None)

    # --- running real commands ------------------------------------------------------------

    def volact(self, *args: str, show: bool = True, env: dict[str, str] | None = None) -> str:
        """Run ``volact ARGS`` as a real process (printed first); returns its stdout."""
        if show:
            shown = " ".join(shlex.quote(a) for a in args)
            # Soft-wrapped: a command is never broken in the middle of an argument.
            self.console.print(f"[bold cyan]$ volact {shown}[/]", soft_wrap=True)
        result = subprocess.run(
            [sys.executable, "-m", "volact", *args],
            capture_output=True,
            text=True,
            env=env or self.env,
            cwd=self.root,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise InternalError(
                f"`volact {' '.join(args)}` failed: {result.stderr.strip() or result.stdout}"
            )
        if show:
            for line in (result.stdout + result.stderr).strip().splitlines():
                self.console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        return result.stdout.strip()

    def section(self, title: str, text: str) -> None:
        self.console.print()
        self.console.rule(f"[bold]{title}")
        self.console.print(text, highlight=False, soft_wrap=True)

    # --- the story --------------------------------------------------------------------------

    def vendor_and_host(self) -> tuple[str, Path]:
        self.section(
            "1. The vendor",
            "Acme creates its root key, a product in a product group, exports the signed product "
            "descriptor that ships inside the app, and issues a host key to its customer Contoso.",
        )
        self.volact("vendor", "init", "--id", "acme", "--name", "Acme Software")
        self.volact(
            "vendor", "product", "add", PRODUCT, "--name", "Acme Writer 2026", "--group", GROUP
        )
        descriptor = self.root / "writer.json"
        self.volact("vendor", "product", "export", PRODUCT, "-o", str(descriptor))
        gvlk = self.volact("vendor", "key", "gvlk", PRODUCT)
        host_key = self.volact("vendor", "key", "host", "--customer", "Contoso", "--groups", GROUP)

        self.section(
            "2. The customer's activation host, certified offline",
            "Contoso's admin sets up a host with the host key; the host writes a signed request "
            "file, the vendor answers it, and the host installs the answer: its certificate.",
        )
        self.volact("host", "init", "--key", host_key)
        self.volact("host", "activate", "--offline-request", "request.json")
        response = self.volact("vendor", "fulfil", "request.json", show=False)
        self.console.print(
            "[bold cyan]$ volact vendor fulfil request.json > response.json[/]", soft_wrap=True
        )
        (self.root / "response.json").write_text(response + "\n", encoding="utf-8")
        self.volact("host", "activate", "--offline-response", "response.json")
        return gvlk, descriptor

    @contextlib.contextmanager
    def host_process(self) -> Iterator[str]:
        port = _free_port()
        args = ["host", "serve", "--port", str(port), "--bind", "127.0.0.1", "--rate-limit", "0"]
        args += ["--admin-port", "0"]  # the admin listener on a free port, like the host
        self.console.print(f"[bold cyan]$ volact {' '.join(args)} &[/]", soft_wrap=True)
        log = open(self.root / "host.log", "wb")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [sys.executable, "-m", "volact", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.root,
        )
        address = f"127.0.0.1:{port}"
        try:
            _wait_healthy(f"http://{address}/v1/health", process)
            self.console.print(f"  volact host listening on http://{address} (pid {process.pid})")
            yield address
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()

    def clients(self, gvlk: str, descriptor: Path, address: str) -> None:
        from volact.client import License

        self.section(
            "3. Five client machines",
            f"Each machine installs the GVLK and activates against {address}. The host counts "
            "distinct machines (CMIDs) per product group and activates the group once 5 have "
            "asked; until then it answers count_insufficient and clients retry every 2 hours. "
            "The demo compresses time: machines 1–4 try again at once, where real clients "
            "would wait for their next retry, 2 hours later.",
        )
        rows = [ClientRow(f"machine-{i}") for i in range(1, CLIENTS + 1)]
        licenses: list[License] = []
        count = {"count": 0, "threshold": 5}

        def view() -> Group:
            table = Table(expand=False)
            for column in ("client", "CMID", "state", "last answer"):
                table.add_column(column)
            for row in rows:
                style = STATE_STYLES.get(row.state, "")
                table.add_row(row.name, row.cmid[:8], Text(row.state, style=style), row.note)
            bar = Text(
                f"host count for {GROUP}: {count['count']} of {count['threshold']}",
                style="bold green" if count["count"] >= count["threshold"] else "bold yellow",
            )
            return Group(Panel(bar, expand=False), table)

        def attempt(index: int, live: Live, when: str = "") -> None:
            row, lic = rows[index], licenses[index]
            try:
                lic.activate()
                status = lic.status()
                count["count"] = max(count["count"], count["threshold"])
                until = status.valid_until.strftime("%Y-%m-%d") if status.valid_until else "—"
                row.note = f"activated, valid until {until}"
            except CountInsufficient as error:
                count["count"] = int(error.details.get("count", count["count"]))
                count["threshold"] = int(error.details.get("threshold", count["threshold"]))
                row.note = f"count_insufficient: {error.message}"
            except VolactError as error:
                row.note = f"{error.code}: {error.message}"
            row.state = str(lic.status().state)
            live.console.print(
                f"  {row.name}{when}: [{STATE_STYLES.get(row.state, '')}]{row.state}[/] — "
                f"{row.note}",
                highlight=False,
            )
            live.update(view())
            time.sleep(self.pause)

        with Live(view(), console=self.console, refresh_per_second=10, transient=False) as live:
            for index, row in enumerate(rows):
                # machine-1 is this machine (its OS identity, which `volact client status` reads
                # too); the others are simulated ones, named by the demo's own code.
                simulated = None if index == 0 else f"demo-{row.name}"
                lic = License.from_descriptor(
                    descriptor, self.root / "clients" / row.name, machine_id=simulated
                )
                lic.install_key(gvlk)
                lic.configure(manual_host=address)
                licenses.append(lic)
                status = lic.status()
                row.cmid, row.state, row.note = status.cmid or "", str(status.state), "installed"
                live.update(view())
                attempt(index, live)
            for index in range(CLIENTS - 1):
                rows[index].note = "at its next retry (2 hours later; the demo does not wait)…"
                live.update(view())
                attempt(index, live, " at its next retry (2 hours later)")

    def statuses(self) -> None:
        self.section(
            "4. What the client and the host say",
            "`volact client status` (like slmgr /dlv) on machine-1, then `volact host status`.",
        )
        env = {**self.env, "VOLACT_STATE_DIR": str(self.root / "clients" / "machine-1")}
        self.volact("client", "status", env=env)
        self.volact("host", "status")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy: our own host


def _wait_healthy(url: str, process: subprocess.Popen[bytes], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InternalError(f"the host process exited with status {process.returncode}")
        try:
            with _DIRECT.open(url, timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except OSError:  # refused while starting (URLError is an OSError)
            pass
        time.sleep(0.05)
    raise InternalError(f"the host did not answer {url} within {limit:.0f} s")


def run_demo(keep: Path | None = None, pause: float = 0.3, console: Console | None = None) -> None:
    """Play the whole story; ``keep`` keeps the files in that (new) directory."""
    # Piped or redirected, rich would wrap every line at 80 columns, in the middle of a command's
    # argument: let long lines run on instead (a terminal wraps them itself).
    console = console or Console(soft_wrap=not sys.stdout.isatty())
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if keep is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="volact-demo-")))
        else:
            root = keep.resolve()
            root.mkdir(parents=True, exist_ok=False)
        console.print(f"[bold]volact demo[/] — working in {root}")
        demo = Demo(root, console, pause)
        gvlk, descriptor = demo.vendor_and_host()
        with demo.host_process() as address:
            demo.clients(gvlk, descriptor, address)
            demo.statuses()
    console.print()
    elapsed = time.monotonic() - started
    where = f"files kept in {root}" if keep else "temporary files removed"
    console.print(f"[bold green]Done[/] in {elapsed:.1f} s; host stopped, {where}.")
