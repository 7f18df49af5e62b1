"""`volact host init` and `volact host activate`: certifying a host with the vendor.

``init`` checks that the key is a HOST key and makes the host's id and signing key (0600).
``activate`` gets the vendor's certificate online (``POST /v1/host-activations``) or by an
offline request file and response file; see docs/vendor.md.
"""

from __future__ import annotations

import os
from typing import Any

import click

from volact.cli._output import json_option, print_json
from volact.cli.host import dir_option, resolve_host_dir
from volact.cli.vendor import read_input_file, when, write_output
from volact.clock import system_clock
from volact.core.errors import ConfigurationError

MAX_RESPONSE_FILE_BYTES = 64 * 1024


HOST_KEY_ENV = "VOLACT_HOST_KEY"
MAX_KEY_FILE_BYTES = 4096


def _host_key(given: str | None, key_file: str | None) -> str:
    """The host key: ``--key`` (``-``: read from stdin), ``--key-file FILE``, else
    ``$VOLACT_HOST_KEY``. A key on the command line is seen by ``ps`` and kept in shell
    history: the other three keep it out of both."""
    if given is not None and key_file is not None:
        raise ConfigurationError("use one of --key and --key-file, not both")
    if key_file is not None or given == "-":
        source = key_file if key_file is not None else "-"
        data = read_input_file(source, MAX_KEY_FILE_BYTES)
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ConfigurationError("the host key file is not text") from exc
        if not text:
            where = "standard input" if source == "-" else source
            raise ConfigurationError(f"no host key in {where}")
        return text
    if given is not None:
        return given
    from_env = os.environ.get(HOST_KEY_ENV, "").strip()
    if from_env:
        return from_env
    raise ConfigurationError(
        f"no host key: pass --key - (read from standard input), --key-file FILE, or set "
        f"{HOST_KEY_ENV}"
    )


@click.command("init")
@click.option(
    "--key",
    "host_key",
    metavar="HOSTKEY",
    help="The host key from the vendor; '-' reads it from standard input (safer: a key on the "
    f"command line is seen by ps and shell history). Else --key-file, else ${HOST_KEY_ENV}.",
)
@click.option(
    "--key-file",
    metavar="FILE",
    help="Read the host key from FILE ('-': standard input).",
)
@click.option(
    "--vendor", "vendor_url", metavar="URL", help="The vendor service's URL (for `host activate`)."
)
@dir_option
@json_option
def init(
    host_key: str | None,
    key_file: str | None,
    vendor_url: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Set up this host with a HOST key: makes the host id and its signing key.

    On a host set up before, the host id and signing key are kept and the key is replaced.
    """
    key_text = _host_key(host_key, key_file)
    from volact.host import certification
    from volact.host.admin.token import ensure_token
    from volact.host.identity import HostFiles

    path = resolve_host_dir(directory)
    settings, created = certification.init_host(HostFiles(path), key_text, vendor_url=vendor_url)
    ensure_token(path)  # the admin listener's token (`volact host admin-token` prints it)
    serial = certification.host_key_serial(settings.host_key)
    note = "host initialised" if created else "host key replaced; host id and signing key kept"
    if as_json:
        print_json({"host_id": settings.host_id, "key_serial": serial, "directory": str(path)})
        return
    click.echo(f"host id:     {settings.host_id}")
    click.echo(f"key serial:  {serial}")
    click.echo(f"directory:   {path}")
    click.echo(f"{note}; next: `volact host activate`", err=True)


def _certificate_json(certificate: Any) -> dict[str, Any]:
    return {
        "cert_id": certificate.cert_id,
        "vendor_id": certificate.vendor_id,
        "host_id": certificate.host_id,
        "customer": certificate.customer,
        "key_serial": certificate.key_serial,
        "groups": sorted(certificate.groups),
        "not_before": certificate.not_before,
        "not_after": certificate.not_after,
        "issued_at": certificate.issued_at,
    }


def _report(certificate: Any, as_json: bool) -> None:
    if as_json:
        print_json(_certificate_json(certificate))
        return
    click.echo(
        f"certified by vendor {certificate.vendor_id} for {', '.join(sorted(certificate.groups))} "
        f"until {when(certificate.not_after)} (certificate {certificate.cert_id})"
    )


@click.command("activate")
@click.option(
    "--vendor", "vendor_url", metavar="URL", help="Certify online with the vendor service at URL."
)
@click.option(
    "--offline-request",
    metavar="FILE",
    help="Write an offline request to FILE, mode 0600 ('-': stdout).",
)
@click.option(
    "--offline-response", metavar="FILE", help="Install the vendor's offline response FILE."
)
@dir_option
@json_option
def activate(
    vendor_url: str | None,
    offline_request: str | None,
    offline_response: str | None,
    directory: str | None,
    as_json: bool,
) -> None:
    """Get this host's certificate from the vendor: online, or with offline files.

    \b
    online:   volact host activate [--vendor URL]
    offline:  volact host activate --offline-request request.json
              (the vendor runs `volact vendor fulfil request.json > response.json`)
              volact host activate --offline-response response.json
    """
    from volact.host import certification
    from volact.host.identity import HostFiles

    chosen = [
        name
        for name, value in (
            ("--vendor", vendor_url),
            ("--offline-request", offline_request),
            ("--offline-response", offline_response),
        )
        if value
    ]
    if len(chosen) > 1:
        raise ConfigurationError(f"use one of {', '.join(chosen)}, not several")
    files = HostFiles(resolve_host_dir(directory))
    now = system_clock()
    if offline_request:
        request = certification.write_host_request_file(files, now=now)
        write_output(request.to_file(), offline_request, private=True)
        if as_json:
            if offline_request != "-":
                print_json({"request_id": request.request_id, "file": offline_request})
            return
        click.echo(
            f"request {request.request_id} written; the vendor answers it with "
            "`volact vendor fulfil FILE`, then install the answer with "
            "`volact host activate --offline-response RESPONSE`",
            err=True,
        )
        return
    if offline_response:
        data = read_input_file(offline_response, MAX_RESPONSE_FILE_BYTES)
        certificate = certification.install_host_response(files, data, now=now)
        _report(certificate, as_json)
        return
    url = vendor_url or files.settings().vendor_url
    if not url:
        raise ConfigurationError(
            "no vendor URL: pass --vendor URL (it is remembered), or certify offline with "
            "--offline-request FILE"
        )
    certificate = certification.certify_host_online(files, url, now=now)
    _report(certificate, as_json)


COMMANDS: list[click.Command] = [init, activate]
