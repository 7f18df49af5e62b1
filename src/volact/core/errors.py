"""Stable error codes and the exceptions that carry them.

This module is the one source of truth for every error code volact emits: the host's HTTP
answers, the client SDK's typed errors, the CLI's one-line messages, ``volact explain`` and the
error-code documentation are all generated from ``CODES``. HTTP status codes are *not* here: the
host's ASGI app is the only place that maps codes to statuses.

Codes are part of the public contract: never rename one, only add.

**Who reads the next step.** A message says what happened; what to do next depends on where the
reader stands: a person at the ``volact`` command runs a command, a vendor's app calls the SDK.
That is one rule, written here: a remedy (``ErrorInfo.remedy`` and ``sdk_remedy``) and an error's
own next step (:class:`NextStep`, given where the error is raised) each have a CLI form and an SDK
form, and :meth:`VolactError.text` (``"cli"`` or ``"sdk"``) and :func:`remedy_for` pick one. The
CLI renders ``text("cli")``; ``str(error)`` is ``text("sdk")``, what an SDK caller logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Audience = Literal["cli", "sdk"]
"""Who reads a next step: a person at the ``volact`` command, or a program using the SDK."""


@dataclass(frozen=True)
class ErrorInfo:
    """What ``volact explain CODE`` says about an error code."""

    code: str
    where: str  # "host", "client", "vendor" or "any": who emits it
    summary: str
    explanation: str
    remedy: str  # what to do, for a person at the `volact` command
    sdk_remedy: str = ""  # the same for a program using the SDK, when it differs


@dataclass(frozen=True)
class NextStep:
    """What to do next, said to each reader: a ``volact`` command for a person at the CLI, an
    SDK call for a vendor's app. Give it where an error is raised (``next_step=``)."""

    cli: str
    sdk: str

    def for_audience(self, audience: Audience) -> str:
        return self.sdk if audience == "sdk" else self.cli


CODES: dict[str, ErrorInfo] = {
    info.code: info
    for info in [
        ErrorInfo(
            "bad_request",
            "any",
            "The request or file was malformed.",
            "A field is missing, has the wrong type or size, or the body or file is not valid "
            "JSON of the expected shape. Nothing was changed.",
            "Check the field named in the details; upgrade the client if it sends an old shape.",
        ),
        ErrorInfo(
            "unsupported_version",
            "any",
            "The protocol or file version is not supported.",
            "The request, signed object or file declares a version this program does not speak. "
            "This program speaks protocol version 1. Host activation requests are at version 2: "
            "version 1 held the secret host key and is no longer accepted.",
            "Upgrade the older side (host, client or vendor tools) so both speak the same version; "
            "for an old host activation request, make a new one on the host.",
        ),
        ErrorInfo(
            "product_unknown",
            "any",
            "The product id is not known.",
            "The product named in the request is not defined by the vendor (or not installed on "
            "this client).",
            "Check the product id against `volact vendor product list` or the product descriptor.",
        ),
        ErrorInfo(
            "product_not_hosted",
            "host",
            "This host is not certified for the product's group.",
            "The host certificate lists the product groups this host may activate; the product's "
            "group is not among them.",
            "Ask the vendor for a host key that covers the group, or point the client at a host "
            "that serves it.",
        ),
        ErrorInfo(
            "invalid_key",
            "any",
            "The product key is malformed, mistyped, of the wrong kind or not for this product.",
            "Keys are 25 characters in five groups with a checksum; the checksum catches typos. A "
            "key also has a channel (GVLK, host key, MAK) and must match the product and the "
            "command it is given to.",
            "Re-type the key (look-alike characters are never used), and check that it is the "
            "right kind of key for this command and product.",
        ),
        ErrorInfo(
            "count_insufficient",
            "host",
            "Not enough distinct clients have asked yet.",
            "A host activates a product group only once the threshold of distinct client "
            "machines (default 5) have asked within the last 30 days. The request was counted.",
            "Nothing to do: the client retries at its retry interval (default 2 hours) and "
            "activates once the count reaches the threshold.",
        ),
        ErrorInfo(
            "time_skew",
            "any",
            "The client's clock differs from the host's by more than 4 hours.",
            "Tickets carry the host's time; a client whose clock is far off is refused so a "
            "wrong clock cannot stretch a grace period.",
            "Fix the client machine's clock (NTP), then activate again.",
        ),
        ErrorInfo(
            "client_blocked",
            "host",
            "The host's administrator blocked this client.",
            "Blocked client machine ids (CMIDs) are refused and are not counted.",
            "Ask your IT department (the host's administrator): blocking was their decision, "
            "and they can reverse it with `volact host unblock CMID`.",
        ),
        ErrorInfo(
            "rate_limited",
            "any",
            "Too many requests from this address.",
            "The service limits the rate of requests per client address.",
            "Wait and try again; the details say how many seconds to wait.",
        ),
        ErrorInfo(
            "unauthorized",
            "host",
            "The admin token is missing or wrong.",
            "The host's admin listener (its admin API, dashboard and metrics) answers only "
            "requests that carry the admin token made by `volact host init`. Nothing was read "
            "or changed.",
            "Send the token (`volact host admin-token` prints it) as `Authorization: Bearer "
            "TOKEN`, or sign in to the dashboard with it; after `--rotate`, use the new one.",
        ),
        ErrorInfo(
            "host_not_activated",
            "host",
            "The host has no valid certificate from the vendor.",
            "A host can activate clients only after the vendor certified it (`volact host "
            "activate`), and only while the certificate is valid.",
            "Ask your IT department to certify the activation host; its administrator runs "
            "`volact host activate` on it (online or with offline files).",
        ),
        ErrorInfo(
            "key_exhausted",
            "vendor",
            "The key has no activations left.",
            "A host key certifies a limited number of distinct hosts (default 6), and each host "
            "may be re-certified up to 10 times; a MAK activates a limited number of machines.",
            "Ask the vendor for more activations or a new key; re-use an existing host instead "
            "of certifying a new one.",
        ),
        ErrorInfo(
            "internal",
            "any",
            "An unexpected internal error.",
            "Something failed that should not have. Nothing acknowledged was lost; the details "
            "were logged by the service.",
            "Retry; if it persists, report it with the service's log.",
        ),
        ErrorInfo(
            "storage_error",
            "any",
            "The state or database could not be read or written.",
            "A full disk, a read-only directory, a missing file or an unreachable database. The "
            "operation was not carried out, and nothing was half-written.",
            "Fix the storage named in the message (space, permissions, database URL) and retry.",
        ),
        ErrorInfo(
            "not_found",
            "any",
            "The named object does not exist.",
            "The product, key, client or file named in the command was not found.",
            "Check the name; list what exists with the matching `list` command.",
        ),
        ErrorInfo(
            "replayed_request",
            "vendor",
            "The request was already used.",
            "An offline request or response file may be used once; a response is bound to the "
            "host or machines that asked for it.",
            "Make a new request file on the machine that needs it.",
        ),
        ErrorInfo(
            "no_host_found",
            "client",
            "No activation host was found.",
            "No host is set by hand, none is cached, and DNS has no SRV record under any of the "
            "names queried.",
            "The message lists each name queried and its answer. A query that timed out or was "
            "refused: check the DNS server (`volact client set-dns-server IP`). No record "
            "(NXDOMAIN): ask your IT department to publish the SRV record (`volact host "
            "dns-records`), or set the domain (`volact client set-domain DOMAIN`) or the host "
            "(`volact client set-host HOST`) by hand.",
            "The message lists each name queried and its answer. A query that timed out or was "
            "refused: check the DNS server (`License.configure(dns_server=IP)`). No record: ask "
            "the customer's IT department to publish the SRV record, or configure the domain "
            "(`License.configure(domains=[DOMAIN])`) or the host "
            "(`License.configure(manual_host=HOST)`).",
        ),
        ErrorInfo(
            "host_unreachable",
            "client",
            "Activation hosts were found but none answered.",
            "Every host named by the SRV records (or set by hand) refused the connection or "
            "timed out.",
            "Ask your IT department to check that the activation host is running and that its "
            "port (default 7688) is open between this machine and the host; the host's "
            "administrator checks with `volact host status` on the host. Meanwhile the product "
            "keeps working in its grace period and retries by itself.",
        ),
        ErrorInfo(
            "invalid_host_certificate",
            "client",
            "The host's certificate is not signed by this product's vendor.",
            "Every activation must chain to a root key listed in the product descriptor; this "
            "host's certificate does not, does not cover the product's group, or is outside its "
            "validity. The client's state was not changed.",
            "Use a host certified by the product's vendor.",
        ),
        ErrorInfo(
            "invalid_ticket",
            "client",
            "The activation ticket did not verify.",
            "The ticket is not signed by the certified host key, is for another machine, product "
            "or request, was issued outside the certificate's validity or more than 4 hours in "
            "this machine's future, or claims what the certificate's policy does not allow "
            "(validity, grace, intervals, a threshold other than the certificate's, a count "
            "below it). The client's state was not changed.",
            "Check this machine's clock (NTP), then activate again; if it persists, the host may "
            "be misconfigured or not genuine.",
        ),
        ErrorInfo(
            "clock_tampered",
            "client",
            "The system clock went backwards.",
            "The clock reads earlier than a time the client has already trusted (from a host's "
            "ticket or its own clock), by more than the accepted skew of 4 hours and a small "
            "tolerance. Licensing is in notification until the next successful activation.",
            "Correct the system clock, then `volact client activate`.",
            "Correct the system clock, then call `License.activate()`.",
        ),
        ErrorInfo(
            "rearm_limit",
            "client",
            "No rearms left.",
            "A product may be rearmed (grace reset, new CMID) a limited number of times (default "
            "5).",
            "Activate the product instead of rearming it.",
        ),
        ErrorInfo(
            "not_installed",
            "client",
            "No product key is installed.",
            "The client has no product installed (or not the one named).",
            "Install a key first: `volact client install-key KEY --product-config FILE` (the "
            "product descriptor FILE ships with the product).",
            "Install a key first: `License.from_descriptor(FILE).install_key(KEY)`.",
        ),
        ErrorInfo(
            "host_revoked",
            "any",
            "The host's certificate is on the vendor's revocation list.",
            "The vendor revoked this host's certificate (a leaked key, a replaced machine, an "
            "ended contract) or it was superseded when the same host id was certified again. A "
            "client that has seen the list (from any host of the organisation) refuses the "
            "host's tickets; the vendor refuses to renew the certificate.",
            "Activate at another host of the organisation (`volact client diagnose` lists them); "
            "the host's admin asks the vendor for a new certification "
            "(`volact host activate`).",
        ),
        ErrorInfo(
            "key_revoked",
            "vendor",
            "The host key was revoked by the vendor.",
            "The vendor revoked this host key as a whole (`volact vendor revoke --host-key`): "
            "no host is certified with it any more, and every certificate issued with it is on "
            "the revocation list.",
            "Ask the vendor for a new host key and re-certify the hosts with it "
            "(`volact host init --key NEW --dir DIR`, then `volact host activate`).",
        ),
    ]
}


class VolactError(Exception):
    """Base of every error that carries a stable code.

    ``message`` is a complete sentence for a human; ``details`` is a JSON-able mapping with
    machine-readable facts (never secrets, never stack traces).
    """

    code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        next_step: NextStep | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.next_step = next_step

    def text(self, audience: Audience = "sdk") -> str:
        """The message with the next step for ``audience`` (the one rule of this module)."""
        if self.next_step is None:
            return self.message
        return f"{self.message}; {self.next_step.for_audience(audience)}"

    def __str__(self) -> str:
        return self.text("sdk")

    def to_dict(self, audience: Audience = "sdk") -> dict[str, Any]:
        return {"code": self.code, "message": self.text(audience), "details": self.details}


# --- kinds: what went wrong, whoever's code it is (h11 splits Local and Remote errors likewise) ---


class UsageError(VolactError):
    """We were misused: the caller's arguments or the operator's configuration are wrong
    (a port that cannot be listened on, an unknown database URL scheme, a missing setting)."""


class PeerError(VolactError):
    """The peer sent garbage: a request, answer, file or signed object that is malformed, of
    another version, or does not verify."""


class Refusal(VolactError):
    """The peer was understood and the rules say no (below the threshold, blocked, exhausted…)."""


class TransportError(VolactError):
    """No answer could be had: nothing to ask, or the peer could not be reached."""


# --- the codes, each under its kind ------------------------------------------------------------


class BadRequest(PeerError):
    """The peer (or a file) sent something malformed."""

    code = "bad_request"


class ConfigurationError(UsageError, BadRequest):
    """The operator's own mistake (a usage error), with the same stable code as a malformed
    request; it is also a :class:`BadRequest`, so what caught ``bad_request`` still does."""

    code = "bad_request"


class UnsupportedVersion(PeerError):
    code = "unsupported_version"


class ProductUnknown(Refusal):
    code = "product_unknown"


class ProductNotHosted(Refusal):
    code = "product_not_hosted"


class InvalidKey(Refusal):
    code = "invalid_key"


class CountInsufficient(Refusal):
    code = "count_insufficient"


class TimeSkew(Refusal):
    code = "time_skew"


class ClientBlocked(Refusal):
    code = "client_blocked"


class RateLimited(Refusal):
    code = "rate_limited"


class Unauthorized(Refusal):
    code = "unauthorized"


class HostNotActivated(Refusal):
    code = "host_not_activated"


class KeyExhausted(Refusal):
    code = "key_exhausted"


class InternalError(VolactError):
    code = "internal"


class StorageError(VolactError):
    """The store failed (disk full, read-only, database unreachable): a kind of its own."""

    code = "storage_error"


class NotFound(Refusal):
    code = "not_found"


class ReplayedRequest(Refusal):
    code = "replayed_request"


class NoHostFound(TransportError):
    code = "no_host_found"


class HostUnreachable(TransportError):
    code = "host_unreachable"


class InvalidHostCertificate(PeerError):
    """A host certificate failed verification (any reason: the reason goes to logs)."""

    code = "invalid_host_certificate"


class InvalidTicket(PeerError):
    """A ticket failed verification (any reason: the reason goes to logs)."""

    code = "invalid_ticket"


class HostRevoked(InvalidHostCertificate):
    """The host's certificate (or its host key) is on the vendor's revocation list."""

    code = "host_revoked"


class KeyRevoked(Refusal):
    code = "key_revoked"


class ClockTampered(Refusal):
    code = "clock_tampered"


class RearmLimit(Refusal):
    code = "rearm_limit"


class NotInstalled(UsageError):
    code = "not_installed"


_KINDS = (UsageError, PeerError, Refusal, TransportError)


def _all_error_classes() -> dict[str, type[VolactError]]:
    """Code → the class that a code received over the wire becomes (the first one defined)."""
    found: dict[str, type[VolactError]] = {}
    pending = list(VolactError.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in _KINDS:
            found.setdefault(cls.code, cls)
        # A code's class may refine another's (host_revoked is an invalid_host_certificate).
        pending.extend(cls.__subclasses__())
    found["bad_request"] = BadRequest
    return found


ERROR_CLASSES: dict[str, type[VolactError]] = _all_error_classes()


def error_from_code(
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    next_step: NextStep | None = None,
) -> VolactError:
    """Rebuild a typed error from a code received over the wire (unknown codes -> internal)."""
    cls = ERROR_CLASSES.get(code, InternalError)
    return cls(message, details, next_step=next_step)


def error_body(error: VolactError, audience: Audience = "sdk") -> dict[str, Any]:
    """The one error shape of SPEC §6, used by every service and every ``--json`` error (the
    CLI's with ``audience="cli"``)."""
    return {"ok": False, "error": error.to_dict(audience)}


def remedy_for(code: str, audience: Audience) -> str:
    """What to do about ``code``, said to ``audience`` (an unknown code: ``internal``'s)."""
    info = CODES.get(code) or CODES["internal"]
    return info.sdk_remedy if audience == "sdk" and info.sdk_remedy else info.remedy
