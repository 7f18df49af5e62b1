"""`volact host admin-token`: the admin listener's token (made by `volact host init`)."""

from __future__ import annotations

import click

from volact.cli._output import json_option, print_json
from volact.cli.host import dir_option, resolve_host_dir


@click.command("admin-token")
@click.option("--rotate", is_flag=True, help="Replace the token (old sessions and scripts stop).")
@dir_option
@json_option
def admin_token(rotate: bool, directory: str | None, as_json: bool) -> None:
    """Print the admin token of the admin listener (API, dashboard, metrics); --rotate makes a new
    one, which a running host takes up at once.

    The token is in DIR/admin.token (mode 0600); send it as `Authorization: Bearer TOKEN`.
    """
    from volact.host.admin import token as admin
    from volact.host.identity import HostFiles

    path = resolve_host_dir(directory)
    HostFiles(path).settings()  # "no host in DIR; run `volact host init`" first
    if rotate:
        value, made = admin.make_token(path), True
    else:
        value, made = admin.ensure_token(path)
    if as_json:
        print_json({"token": value, "file": str(admin.token_path(path)), "new": made})
        return
    click.echo(value)
    if made:
        click.echo(f"new admin token written to {admin.token_path(path)}", err=True)


COMMANDS = [admin_token]
