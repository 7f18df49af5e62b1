"""`volact vendor …`: the vendor's root key, groups, products, keys, fulfilment and service.

Every command takes ``--dir`` (else ``VOLACT_VENDOR_DIR``, else ``/var/lib/volact/vendor`` when
writable, else the user's data directory) and ``--db URL`` (else ``VOLACT_VENDOR_DB``, else the
directory's ``vendor.db``; ``postgresql://…`` puts the store in PostgreSQL, and the directory
then holds only the root private keys). Key commands print the key alone on stdout; commands
that print data take ``--json``. Heavy modules are imported inside the commands so that
``volact --help`` stays fast. The commands open the vendor directory
(:class:`~volact.authority.operations.Vendor`), call one of its operations and render the
result; the ``key`` commands, ``fulfil`` and ``serve`` are in :mod:`volact.cli.vendor_keys`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from volact import paths
from volact.cli._output import json_option, print_json, print_table
from volact.core.errors import BadRequest, ConfigurationError, StorageError
from volact.fileio import read_bytes

if TYPE_CHECKING:
    from volact.authority.operations import Vendor

VENDOR_DIR_ENV = "VOLACT_VENDOR_DIR"
VENDOR_DB_ENV = "VOLACT_VENDOR_DB"
_DB_META = "volact.vendor.db"
SYSTEM_VENDOR_DIR = Path("/var/lib/volact/vendor")
MAX_REQUEST_FILE_BYTES = 4 * 1024 * 1024

F = TypeVar("F", bound=Callable[..., Any])


# --- shared helpers ----------------------------------------------------------------------------


def read_input_file(path: str, limit: int = MAX_REQUEST_FILE_BYTES) -> bytes:
    """A file given on the command line (``-`` is stdin), refused above ``limit`` bytes."""
    if path != "-":
        return read_bytes(Path(path), what="file", limit=limit)
    try:
        data = sys.stdin.buffer.read(limit + 1)
    except OSError as exc:
        raise StorageError(f"cannot read standard input: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise BadRequest(f"the input is larger than {limit} bytes; it is not a volact request file")
    return data


def write_output(text: str, output: str | None, *, private: bool = False) -> None:
    """Print ``text`` on stdout, or write it to ``output`` (atomically; mode 0600 when
    ``private``: request and response files are for the people who carry them)."""
    if output is None or output == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return
    from volact.fileio import write_bytes_atomic

    try:
        write_bytes_atomic(Path(output), text.encode("utf-8"), mode=0o600 if private else 0o644)
    except OSError as exc:
        raise StorageError(f"cannot write {output}: {exc.strerror or exc}") from exc


def when(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """A duration option: ``180d``, ``7d``, ``2h``, ``15m`` (a bare number is days)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from volact.core.durations import parse_duration

        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def _remember_db(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    ctx.meta[_DB_META] = value or None


def dir_option(function: F) -> F:
    """``--dir DIR`` (a parameter of the command) and ``--db URL`` (read by :func:`database`)."""
    function = click.option(
        "--db",
        metavar="URL",
        envvar=VENDOR_DB_ENV,
        expose_value=False,
        callback=_remember_db,
        help=f"The vendor database: sqlite:///PATH or postgresql://USER@HOST/DB (default: "
        f"${VENDOR_DB_ENV}, else DIR/vendor.db). DIR still holds the root private keys.",
    )(function)
    return click.option(
        "--dir",
        "directory",
        metavar="DIR",
        help=f"The vendor directory (default: ${VENDOR_DIR_ENV}, else {SYSTEM_VENDOR_DIR} when "
        "writable, else the user's data directory).",
    )(function)


def database() -> str | None:
    """The ``--db`` URL of the running command, if one was given."""
    value = click.get_current_context().meta.get(_DB_META)
    return str(value) if value else None


@contextmanager
def opened(directory: str | None) -> Iterator[Vendor]:
    from volact.authority.operations import Vendor

    vendor = Vendor.open(paths.resolve_dir("vendor", directory), db=database())
    try:
        yield vendor
    finally:
        vendor.close()


def hsm_options(function: F) -> F:
    """``--hsm-module PATH --hsm-token LABEL``: make the root key in a PKCS#11 token."""
    function = click.option(
        "--hsm-token",
        metavar="LABEL",
        help="The PKCS#11 token's label (with --hsm-module; the PIN comes from $VOLACT_HSM_PIN).",
    )(function)
    return click.option(
        "--hsm-module",
        metavar="PATH",
        help="Make the root key in an HSM through this PKCS#11 library (e.g. "
        "/usr/lib/softhsm/libsofthsm2.so); the private key never leaves the token.",
    )(function)


def hsm_choice(module: str | None, token: str | None) -> Any:
    """The token chosen by ``--hsm-module`` and ``--hsm-token`` (None: a key file)."""
    if module is None and token is None:
        return None
    if module is None or token is None:
        raise ConfigurationError("--hsm-module and --hsm-token go together")
    from volact.authority.hsm import TokenChoice

    return TokenChoice(module, token)


# --- vendor ------------------------------------------------------------------------------------


@click.group(short_help="The vendor's tools: root key, products, keys, certification, MAK.")
def vendor() -> None:
    """The vendor's tools: root key, products, keys, host certification, MAK."""


@vendor.command()
@click.option(
    "--id",
    "vendor_id",
    metavar="VENDOR_ID",
    help="The vendor id (part of every GVLK; it never changes).",
)
@click.option("--name", metavar="NAME", help="The vendor's name, shown in descriptors.")
@hsm_options
@dir_option
@json_option
def init(
    vendor_id: str | None,
    name: str | None,
    hsm_module: str | None,
    hsm_token: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Create the vendor directory: store, vendor id and a first root key.

    The root private key is written with mode 0600 and never printed (or, with --hsm-module,
    generated inside the PKCS#11 token, which it never leaves); the vendor id and the root key's
    id are printed.
    """
    from volact.authority.operations import Vendor

    path = paths.resolve_dir("vendor", directory)
    hsm = hsm_choice(hsm_module, hsm_token)
    with Vendor.init(
        path, db=database(), vendor_id=vendor_id, vendor_name=name, hsm=hsm
    ) as created:
        record, _ = created.active_root_key()
        if as_json:
            print_json(
                {
                    "vendor_id": created.vendor_id,
                    "vendor_name": created.vendor_name,
                    "root_key_id": record.key_id,
                    "directory": str(path),
                }
            )
            return
        click.echo(f"vendor id:    {created.vendor_id}")
        click.echo(f"vendor name:  {created.vendor_name}")
        click.echo(f"root key id:  {record.key_id}")
        click.echo(f"directory:    {path}")


# --- root keys ---------------------------------------------------------------------------------


@vendor.group("root-key")
def root_key() -> None:
    """Root key rotation: add a key (listed), activate it (signs), retire the old one."""


def _root_key_rows(records: list[Any]) -> None:
    print_table(
        ["KEY ID", "STATE", "CREATED", "RETIRED"],
        [[r.key_id, r.state, when(r.created_at), when(r.retired_at)] for r in records],
    )


@root_key.command("add")
@click.option(
    "--activate",
    is_flag=True,
    help="Sign with the new key at once (apps with older descriptors then refuse new "
    "certificates; meant for a leaked key).",
)
@hsm_options
@dir_option
@json_option
def root_key_add(
    activate: bool,
    hsm_module: str | None,
    hsm_token: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Rotation, step 1: make a new root key, listed in every descriptor exported from now on.

    It does not sign until `volact vendor root-key activate KEY_ID`, so that apps can first be
    shipped with descriptors that list it. With --hsm-module it is made inside the token.
    """
    hsm = hsm_choice(hsm_module, hsm_token)
    with opened(directory) as v:
        record = v.add_root_key(activate=activate, hsm=hsm)
        if as_json:
            print_json(record.to_json())
            return
        click.echo(f"new root key: {record.key_id} ({record.state})")
        click.echo(
            "export the product descriptors again (`volact vendor product export`) and ship them; "
            + (
                "the new key signs from now on"
                if activate
                else "once apps list the key, `volact vendor root-key activate KEY_ID`"
            ),
            err=True,
        )


@root_key.command("activate")
@click.argument("key_id")
@dir_option
@json_option
def root_key_activate(key_id: str, directory: str | None, as_json: bool) -> None:
    """Rotation, step 2: KEY_ID signs descriptors, certificates and MAK tickets from now on."""
    with opened(directory) as v:
        record = v.activate_root_key(key_id)
        if as_json:
            print_json(record.to_json())
            return
        click.echo(f"active root key: {record.key_id}")


@root_key.command("list")
@dir_option
@json_option
def root_key_list(directory: str | None, as_json: bool) -> None:
    """List the root keys (active, valid, retired)."""
    with opened(directory) as v:
        records = v.root_keys()
        if as_json:
            print_json([record.to_json() for record in records])
            return
        _root_key_rows(records)


@root_key.command("retire")
@click.argument("key_id")
@dir_option
@json_option
def root_key_retire(key_id: str, directory: str | None, as_json: bool) -> None:
    """Stop listing KEY_ID in new descriptors and responses (never the active key).

    Clients whose descriptor no longer lists the key refuse certificates it signed, so
    re-certify those hosts first.
    """
    with opened(directory) as v:
        record = v.retire_root_key(key_id)
        if as_json:
            print_json(record.to_json())
            return
        click.echo(f"retired root key: {record.key_id}")


# --- groups ------------------------------------------------------------------------------------


def _policy_options(function: F) -> F:
    options = [
        click.option(
            "--threshold",
            type=click.IntRange(1, 1000),
            help="Distinct clients a host needs before it activates (default 5).",
        ),
        click.option(
            "--validity", type=DURATION, help="Activation validity (default 180d; 1d–730d)."
        ),
        click.option("--renewal", type=DURATION, help="Renewal interval (default 7d)."),
        click.option("--retry", type=DURATION, help="Retry interval (default 2h)."),
        click.option("--oot-grace", type=DURATION, help="Out-of-tolerance grace (default 30d)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _policy_changes(**values: int | None) -> dict[str, int]:
    names = {
        "threshold": "threshold",
        "validity": "validity",
        "renewal": "renewal_interval",
        "retry": "retry_interval",
        "oot_grace": "oot_grace",
        "renewal_min": "renewal_min",
        "renewal_max": "renewal_max",
        "retry_min": "retry_min",
        "retry_max": "retry_max",
    }
    return {names[key]: value for key, value in values.items() if value is not None}


def _group_json(record: Any) -> dict[str, Any]:
    return {
        "group": record.group_id,
        "policy": record.policy.to_dict(),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _print_group(record: Any) -> None:
    from volact.core.durations import format_duration

    p = record.policy
    click.echo(f"group {record.group_id}")
    click.echo(f"  threshold          {p.threshold}")
    click.echo(f"  validity           {format_duration(p.validity)}")
    click.echo(
        f"  renewal interval   {format_duration(p.renewal_interval)} "
        f"(host admin may set {format_duration(p.renewal_min)}–{format_duration(p.renewal_max)})"
    )
    click.echo(
        f"  retry interval     {format_duration(p.retry_interval)} "
        f"(host admin may set {format_duration(p.retry_min)}–{format_duration(p.retry_max)})"
    )
    click.echo(f"  oot grace          {format_duration(p.oot_grace)}")


@vendor.group()
def group() -> None:
    """Product groups: counts, thresholds and policy are per group."""


@group.command("list")
@dir_option
@json_option
def group_list(directory: str | None, as_json: bool) -> None:
    """List the groups and their policy."""
    with opened(directory) as v:
        records = v.groups()
        if as_json:
            print_json([_group_json(record) for record in records])
            return
        for record in records:
            _print_group(record)


@group.command("set")
@click.argument("group_id", metavar="GROUP")
@_policy_options
@click.option(
    "--renewal-min", type=DURATION, help="Shortest renewal interval a host admin may set."
)
@click.option("--renewal-max", type=DURATION, help="Longest renewal interval a host admin may set.")
@click.option("--retry-min", type=DURATION, help="Shortest retry interval a host admin may set.")
@click.option("--retry-max", type=DURATION, help="Longest retry interval a host admin may set.")
@dir_option
@json_option
def group_set(group_id: str, directory: str | None, as_json: bool, **values: int | None) -> None:
    """Change GROUP's policy. Hosts get it with their next certificate (`volact host activate`)."""
    changes = _policy_changes(**values)
    if not changes:
        raise ConfigurationError("nothing to change; give at least one option (see --help)")
    with opened(directory) as v:
        record = v.set_group(group_id, changes)
        if as_json:
            print_json(_group_json(record))
            return
        _print_group(record)


# --- products ----------------------------------------------------------------------------------


@vendor.group()
def product() -> None:
    """Products: add, list, export the signed descriptor."""


@product.command("add")
@click.argument("product_id", metavar="ID")
@click.option("--name", required=True, help="The product's name.")
@click.option(
    "--group",
    "group_id",
    required=True,
    metavar="GROUP",
    help="The product group (made by its first product).",
)
@_policy_options
@click.option(
    "--oob-grace",
    type=DURATION,
    default="30d",
    show_default=True,
    help="Out-of-box grace after install.",
)
@click.option(
    "--rearms", type=click.IntRange(0, 100), default=5, show_default=True, help="Rearms allowed."
)
@click.option(
    "--srv-service", default="_volact._tcp", show_default=True, help="DNS SRV service name."
)
@click.option(
    "--activation-url", metavar="URL", help="The vendor service's URL for online MAK activation."
)
@dir_option
@json_option
def product_add(
    product_id: str,
    name: str,
    group_id: str,
    oob_grace: int,
    rearms: int,
    srv_service: str,
    activation_url: str | None,
    directory: str | None,
    as_json: bool,
    **policy: int | None,
) -> None:
    """Add a product ID in GROUP.

    The group's policy options (--threshold, --validity, --renewal, --retry, --oot-grace) set
    the policy of a NEW group; for an existing group they must match it (change a group with
    `volact vendor group set`).
    """
    with opened(directory) as v:
        record = v.add_product(
            product_id,
            name=name,
            group=group_id,
            policy=_policy_changes(**policy),
            oob_grace=oob_grace,
            rearm_limit=rearms,
            srv_service=srv_service,
            activation_url=activation_url,
        )
        if as_json:
            print_json(_product_json(v, record))
            return
        click.echo(f"product {record.product_id} added to group {record.group_id}")


def _product_json(v: Vendor, record: Any) -> dict[str, Any]:
    return {
        "product": record.product_id,
        "name": record.name,
        "group": record.group_id,
        "gvlk": v.gvlk(record.product_id).text,
        "oob_grace": record.oob_grace,
        "rearm_limit": record.rearm_limit,
        "srv_service": record.srv_service,
        "activation_url": record.activation_url,
        "created_at": record.created_at,
    }


@product.command("list")
@dir_option
@json_option
def product_list(directory: str | None, as_json: bool) -> None:
    """List the products."""
    with opened(directory) as v:
        records = v.products()
        if as_json:
            print_json([_product_json(v, record) for record in records])
            return
        print_table(
            ["PRODUCT", "GROUP", "GVLK", "NAME"],
            [[r.product_id, r.group_id, v.gvlk(r.product_id).text, r.name] for r in records],
        )


@product.command("export")
@click.argument("product_id", metavar="ID")
@click.option(
    "-o", "--output", metavar="FILE", help="Write the descriptor to FILE instead of stdout."
)
@dir_option
def product_export(product_id: str, output: str | None, directory: str | None) -> None:
    """Print the signed product descriptor (the file the app ships with)."""
    with opened(directory) as v:
        write_output(v.descriptor(product_id).to_file() + "\n", output)
