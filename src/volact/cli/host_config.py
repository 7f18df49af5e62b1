"""``volact host serve --config FILE``: the serve flags from a TOML file.

The file's ``[serve]`` table holds the flags of ``volact host serve`` by their long names, without
the dashes in front (``rate-limit`` or ``rate_limit``): every flag the command has, DNS
publishing, TSIG and the connection limits included, with no list to keep in step. A flag given
on the command line overrides the file. The keys become click's ``default_map`` for the command,
so click converts and checks each value exactly as it does a flag's.

```toml
[serve]
port = 7688
db = "postgresql://volact@db.corp.example/volact"
publish-dns = ["corp.example"]
dns-server = "10.0.0.53"
tsig-key = "/etc/volact/volact-host.key"
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from volact.core.errors import ConfigurationError
from volact.fileio import MAX_SMALL_FILE_BYTES, read_text

F = TypeVar("F", bound=Callable[..., Any])

TABLE = "serve"
CONFIG_FLAG = "config"


def _options(command: click.Command) -> dict[str, click.Option]:
    """Every key the file may use for ``command`` (each long flag's name, with dashes or with
    underscores), mapped onto the click option it sets."""
    keys: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in (None, CONFIG_FLAG, "help"):
            continue
        for flag in param.opts:
            if flag.startswith("--"):
                keys[flag[2:]] = param
                keys[flag[2:].replace("-", "_")] = param
    return keys


def settable(command: click.Command) -> list[str]:
    """The keys a config file may set for ``command``, as the flags are spelled."""
    return sorted(
        flag[2:]
        for param in set(_options(command).values())
        for flag in param.opts
        if flag.startswith("--")
    )


def load(
    command: click.Command, path: Path, *, file_of: click.Command | None = None
) -> dict[str, Any]:
    """The ``default_map`` for ``command`` from the TOML file ``path``; ``ConfigurationError``
    naming the file for anything it cannot use (not TOML, no ``[serve]`` table, an unknown
    key).

    ``file_of``: the command whose file it is (``serve``), when ``command`` is another one that
    reads it too (``dns-records``): every key must be one of ``file_of``'s, and those that
    ``command`` also has are used (by their flag's spelling)."""
    text = read_text(path, what="configuration file", limit=MAX_SMALL_FILE_BYTES)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}", {"path": str(path)}) from exc
    unknown_tables = sorted(set(data) - {TABLE})
    if unknown_tables:
        raise ConfigurationError(
            f"{path}: unknown key or table {unknown_tables[0]!r}; the settings go in a "
            f"[{TABLE}] table",
            {"path": str(path)},
        )
    table = data.get(TABLE, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [{TABLE}] must be a table", {"path": str(path)})
    owner = file_of or command
    valid = _options(owner)
    options = _options(command)
    found: dict[str, Any] = {}
    for key, value in table.items():
        if key not in valid:
            known = ", ".join(settable(owner))
            raise ConfigurationError(
                f"{path}: [{TABLE}] has no setting {key!r} (the settings are the flags of "
                f"`volact host serve`: {known})",
                {"path": str(path), "key": key},
            )
        option = options.get(key)
        if option is None or option.name is None:
            continue  # a setting of serve's that this command does not use
        if option.name in found:
            raise ConfigurationError(
                f"{path}: [{TABLE}] sets {key!r} twice", {"path": str(path), "key": key}
            )
        if option.multiple and isinstance(value, str):
            value = [value]  # publish-dns = "corp.example" as well as ["corp.example", …]
        found[option.name] = value
    return found


def _apply(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        owner = None
        if ctx.command.name != TABLE and ctx.parent is not None:
            group = ctx.parent.command
            if isinstance(group, click.Group):
                owner = group.get_command(ctx.parent, TABLE)
        settings = load(ctx.command, Path(value), file_of=owner)
        ctx.default_map = {**(ctx.default_map or {}), **settings}
    return value


def config_option(function: F) -> F:
    """``--config FILE``: read the command's flags from FILE (flags given override it).

    Eager, so the file is read before the other flags take their defaults from it."""
    return click.option(
        f"--{CONFIG_FLAG}",
        metavar="FILE",
        default=None,
        is_eager=True,
        expose_value=False,
        callback=_apply,
        help="serve's TOML file: its [serve] table sets these flags by name "
        '(e.g. port = 7688, publish-dns = ["corp.example"]); flags given here override it.',
    )(function)
