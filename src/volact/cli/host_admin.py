"""`volact host backup` (a consistent copy of the host's database while it serves) and
`volact host admin-token` (the admin listener's token, made by `volact host init`).

SQLite through its online backup API (:mod:`volact.sql.backup`); a PostgreSQL database is
backed up with ``pg_dump`` (``docs/scale-out.md``), which this command names rather than runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from volact.cli._output import json_option, print_json
from volact.cli.host import db_option, dir_option, resolve_host_dir
from volact.core.errors import ConfigurationError


@click.command()
@click.argument("file", metavar="FILE")
@dir_option
@db_option
@json_option
def backup(file: str, directory: str | None, database_url: str | None, as_json: bool) -> None:
    """Copy the host's SQLite database to FILE, consistently, while the host serves.

    Uses SQLite's online backup API; FILE is replaced atomically and made private (0600). For
    PostgreSQL use pg_dump (docs/scale-out.md). Also keep a copy of the host directory's
    host.json, host-signing.pem and certificate.token.
    """
    from volact.host import report
    from volact.sql.backup import backup_sqlite
    from volact.sql.urls import is_postgres_url, sqlite_url_path

    url = report.store_url(resolve_host_dir(directory), database_url)
    if is_postgres_url(url):
        raise ConfigurationError(
            "a PostgreSQL database is backed up with pg_dump, not `volact host backup`: "
            "pg_dump -Fc -d 'URL' > volact.dump (see docs/scale-out.md, Backups)"
        )
    path = sqlite_url_path(url)
    if not path:
        raise ConfigurationError(f"{report.shown_url(url)} is not a database file to back up")
    size = backup_sqlite(Path(path), Path(file))
    if as_json:
        print_json({"database": report.shown_url(url), "backup": file, "bytes": size})
        return
    click.echo(f"backed up {path} to {file} ({size} bytes)")


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


COMMANDS = [backup, admin_token]
