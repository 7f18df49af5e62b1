"""The top-level command groups, imported only when used.

Each area keeps its commands in its own modules (``vendor.py`` and ``vendor_keys.py``,
``host.py`` and ``host_certify.py``, ``client.py``, ``misc.py``). They are loaded lazily so
that a quick command such as ``volact client status`` does not pay for importing the host's
server stack (asyncio, Starlette, uvicorn) or the vendor's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import click


def _host_group() -> click.Command:
    from volact.cli import host, host_admin, host_certify, host_dns, host_trust

    # `host init` and `host activate` belong to host certification (the vendor side's flow).
    for command in [
        *host_certify.COMMANDS,
        *host_admin.COMMANDS,
        *host_trust.COMMANDS,
        *host_dns.COMMANDS,
    ]:
        host.host.add_command(command)
    return host.host


def _vendor_group() -> click.Command:
    from volact.cli import vendor, vendor_keys, vendor_trust

    for command in [*vendor_keys.COMMANDS, *vendor_trust.COMMANDS]:
        vendor.vendor.add_command(command)
    return vendor.vendor


_LOADERS: dict[str, str | Callable[[], click.Command]] = {
    "client": "volact.cli.client:client",
    "demo": "volact.cli.misc:demo",
    "explain": "volact.cli.misc:explain",
    "host": _host_group,
    "vendor": _vendor_group,
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_LOADERS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        loader = _LOADERS.get(cmd_name)
        if loader is None:
            return None
        if isinstance(loader, str):
            module_name, attribute = loader.split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attribute)
        else:
            command = loader()
        self.commands[cmd_name] = command
        return command
