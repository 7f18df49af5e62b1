"""The ``volact`` command.

Errors become one clear line here and nowhere else: ``<code>: <message>`` on stderr and a non-zero
exit status (with ``--json``, the error body of SPEC §6 is also printed on stdout). No traceback
reaches a user unless ``VOLACT_DEBUG=1`` is set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

import click

from volact import __version__
from volact.cli import _commands
from volact.core.errors import (
    CODES,
    ConfigurationError,
    InternalError,
    VolactError,
    error_body,
)

# The modules each extra brings (pyproject.toml): a command that needs a missing one says which
# extra to install, in one line, instead of a traceback.
EXTRA_MODULES = {
    "starlette": "host",
    "uvicorn": "host",
    "httptools": "host",
    "uvloop": "host",
    "nacl": "host",
    "jinja2": "host",  # the admin listener's dashboard
    "prometheus_client": "host",  # and its /metrics (neither is in the vendor extra)
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "rich": "demo",
}

# Exit statuses: 1 for an error with a code, 2 for a usage error (as click), 130 on Ctrl-C.
EXIT_ERROR = 1
EXIT_USAGE = 2


@click.group(
    cls=_commands.LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="volact", message="%(prog)s %(version)s")
def cli() -> None:
    """volact: KMS-style volume activation for software vendors' own products.

    `volact COMMAND --help` shows each command; `volact explain WORD` explains an error code or
    any word the output prints.
    """


def _report(error: VolactError, as_json: bool) -> None:
    """The one line (and the ``--json`` body) of an error, with the next step a person at the
    command can take (:meth:`VolactError.text`)."""
    if as_json:
        click.echo(json.dumps(error_body(error, "cli"), indent=2))
    click.echo(f"{error.code}: {error.text('cli')}", err=True)


def missing_extra(error: ModuleNotFoundError, args: Sequence[str]) -> ConfigurationError | None:
    """The one-line error for a module of an extra that is not installed (None: not one)."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_MODULES.get(module)
    if extra is None:
        return None
    if extra == "host" and args and args[0] in ("vendor", "demo"):
        extra = args[0]  # the vendor's tools and the demo have their own extras
    command = " ".join(["volact", *[arg for arg in args[:2] if not arg.startswith("-")]])
    return ConfigurationError(
        f"`{command}` needs the {extra} extra, which is not installed (no module {module!r}): "
        f"pip install 'volact[{extra}]'",
        {"extra": extra, "module": module},
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``volact`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    debug = os.environ.get("VOLACT_DEBUG") == "1"
    try:
        cli.main(args=args, prog_name="volact", standalone_mode=False)
    except VolactError as error:
        if debug:
            raise
        _report(error, as_json)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if debug:
            raise
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        _report(ConfigurationError(exc.format_message() + hint), as_json)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        missing = missing_extra(exc, args) if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None:
            _report(missing, as_json)
            sys.exit(EXIT_ERROR)
        _report(
            InternalError(
                f"unexpected {type(exc).__name__}: {exc} (set VOLACT_DEBUG=1 for detail)"
            ),
            as_json,
        )
        sys.exit(EXIT_ERROR)


__all__ = ["CODES", "cli", "main"]
