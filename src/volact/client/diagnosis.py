"""``volact client diagnose``: discovery that explains itself, read-only unless asked.

:func:`check` (the default) changes nothing: it queries every DNS name, then asks each
candidate host for ``GET /v1/health`` (a MAK: the vendor service's), and reports who answers. No
activation is made, so the machine is not counted, no MAK activation is used and the next
retry is not moved. :func:`diagnose` (``--activate``) makes a real, recorded attempt
(:func:`volact.client.activation.attempt`) with the same trace.

Either way a failure gets a verdict with the remedy for its kind (:func:`remedy`): a DNS server
that timed out or refused, a name with no SRV record (NXDOMAIN), a host that refused the
connection or did not answer, a TLS or HTTP answer that is not a volact host; else the remedy of
the error's code (``volact explain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from volact.client.activation import Attempt, LicenseParts, attempt
from volact.client.discovery import Candidate, Trace, try_candidates
from volact.client.status import iso
from volact.core import keys
from volact.core.errors import CODES, VolactError
from volact.core.protocol import HEALTH_PATH

__all__ = ["Diagnosis", "check", "diagnose", "remedy"]

ACTIVATE_HINT = "run `volact client diagnose --activate` for a real activation attempt"


@dataclass(frozen=True)
class Diagnosis:
    """What ``volact client diagnose`` shows: the trace, the outcome and a one-line verdict."""

    attempt: Attempt
    lines: list[str]
    verdict: str
    read_only: bool = False

    @property
    def ok(self) -> bool:
        return self.attempt.ok

    def to_dict(self) -> dict[str, Any]:
        error = self.attempt.error
        return {
            "ok": self.ok,
            "mode": "read-only" if self.read_only else "activation",
            "verdict": self.verdict,
            "error": None if error is None else error.to_dict(),
            "trace": None if self.attempt.trace is None else self.attempt.trace.to_dict(),
            "lines": self.lines,
            "status": self.attempt.status.to_dict(),
        }


# --- remedies per failure kind ---------------------------------------------------------------


def _host_remedy(candidate: Candidate, message: str) -> str | None:
    text = message.lower()
    where = candidate.address
    if "refused" in text:
        return (
            f"nothing accepts connections at {where}: start the host there (`systemctl status "
            f"volact-host`; `volact host serve`), check that it listens on port "
            f"{candidate.port}, and open TCP {candidate.port} in the host's firewall"
        )
    if "timeout" in text or "timed out" in text:
        return (
            f"{where} did not answer in time: a firewall drops the connection or the machine is "
            f"down; open TCP {candidate.port} from the clients to the host"
        )
    if "name or service not known" in text or "nodename nor servname" in text:
        return (
            f"the name {candidate.host} does not resolve: fix the SRV record's target or add "
            "the host's A/AAAA record"
        )
    if any(mark in text for mark in ("ssl", "tls", "certificate", "http", "volact body", "body")):
        return (
            f"something that is not a volact host answered at {where} (a web server, a TLS "
            "proxy, another service): clients speak plain HTTP to the host's own port; point "
            "the SRV record or `volact client set-host` at it"
        )
    return None


def _dns_remedy(trace: Trace) -> str | None:
    outcomes = [query.outcome for query in trace.queries]
    server = trace.dns_server
    if any(outcome == "timeout" for outcome in outcomes):
        return (
            f"the DNS server ({server}) did not answer: check that it is reachable on UDP and "
            "TCP 53 (`volact client set-dns-server IP` to ask another), or set the host by hand "
            "(`volact client set-host HOST`)"
        )
    if any("refused" in outcome.lower() for outcome in outcomes):
        return (
            f"the DNS server ({server}) refused the query: it does not answer this machine or "
            "this zone; ask the DNS admin to allow it, or ask the zone's own server "
            "(`volact client set-dns-server IP`)"
        )
    if outcomes and all(outcome in ("nxdomain", "noanswer") for outcome in outcomes):
        names = ", ".join(query.name for query in trace.queries)
        return (
            f"no SRV record at {names} (NXDOMAIN or no records): publish it (`volact host "
            "dns-records` prints it, `volact host serve --publish-dns` publishes it) or name the "
            "domain that has it (`volact client set-domain DOMAIN`)"
        )
    if not outcomes and not trace.manual_host and not trace.cached_host:
        return (
            "name a host (`volact client set-host HOST`) or a domain (`volact client set-domain`)"
        )
    return None


def remedy(error: VolactError, trace: Trace | None) -> str:
    """What to do about ``error``, for its kind (see the module docstring)."""
    if trace is not None:
        for tried in reversed(trace.attempts):
            if tried.result in ("unreachable", "host_unreachable"):
                found = _host_remedy(tried.candidate, tried.message)
                if found is not None:
                    return found
        if not trace.attempts:
            found = _dns_remedy(trace)
            if found is not None:
                return found
    info = CODES.get(error.code)
    return info.remedy if info is not None else "see `volact explain " + error.code + "`"


def _failed(error: VolactError, trace: Trace | None) -> str:
    return f"FAILED: {error.code}: {error.message.rstrip('.')}. Remedy: {remedy(error, trace)}"


# --- a real attempt --------------------------------------------------------------------------


def diagnose(lic: LicenseParts, *, vendor_url: str | None = None) -> Diagnosis:
    """Activate now, querying every DNS name and recording every host tried, and explain."""
    done = attempt(lic, vendor_url=vendor_url, eager=True)
    lines = [] if done.trace is None else done.trace.lines()
    if done.error is None:
        status = done.status
        until = "permanently" if status.valid_until is None else f"until {iso(status.valid_until)}"
        verdict = f"OK: activated by {done.host}, licensed {until}"
    else:
        verdict = _failed(done.error, done.trace)
    return Diagnosis(done, lines, verdict)


# --- the read-only check ---------------------------------------------------------------------


def _get_json(lic: LicenseParts, url: str, *, vendor: bool) -> dict[str, Any]:
    transport = lic._transport
    get = getattr(transport, "get_json", None)
    if get is None:  # an injected transport that only POSTs: the real one for the check
        from volact.net.transport import HTTPTransport, vendor_transport

        get = (vendor_transport() if vendor else HTTPTransport()).get_json
    result: dict[str, Any] = get(url)
    return result


def _health_line(where: str, health: dict[str, Any], group: str) -> str:
    groups = health.get("groups") if isinstance(health.get("groups"), list) else []
    served = "serves" if group in (groups or []) else "does NOT serve"
    activated = "yes" if health.get("activated") else "no"
    return (
        f"health of {where}: answers (volact {health.get('version', '?')}, host "
        f"{health.get('host_id', '?')}, activated {activated}; {served} group {group})"
    )


def check(lic: LicenseParts, *, vendor_url: str | None = None) -> Diagnosis:
    """Read-only: discovery, then ``GET /v1/health`` of each candidate (or of the vendor service
    for a MAK); nothing is activated, counted or recorded."""
    from volact.client import activation
    from volact.net.transport import service_url

    now = lic.clock()
    stored = lic._require()
    status = lic.status()
    group = lic.descriptor.group
    lines: list[str] = ["mode: read-only (nothing is activated, counted or recorded)"]
    trace: Trace | None = None
    host: str | None = None
    try:
        if stored.record.channel is keys.Channel.MAK:
            host = activation._vendor_url(lic, vendor_url)
            health = _get_json(lic, service_url(host, HEALTH_PATH), vendor=True)
            lines.append(f"vendor service {host}: answers (volact {health.get('version', '?')})")
        else:
            candidates, trace, server = activation._discover(lic, stored, eager=True)

            def probe(candidate: Candidate) -> dict[str, Any]:
                return activation.ask_each_address(
                    lic,
                    candidate,
                    server,
                    HEALTH_PATH,
                    lambda url: _get_json(lic, url, vendor=False),
                )

            health = try_candidates(candidates, probe, trace)
            assert trace.reached is not None
            host = trace.reached.address
            lines.extend(trace.lines())
            lines.append(_health_line(host, health, group))
    except VolactError as error:
        if trace is not None:
            lines.extend(trace.lines())
        done = Attempt(lic.product, now, error, host, status, trace)
        return Diagnosis(done, lines, _failed(error, trace), read_only=True)
    verdict = f"OK: {host} answers; nothing was activated ({ACTIVATE_HINT})"
    return Diagnosis(Attempt(lic.product, now, None, host, status, trace), lines, verdict, True)
