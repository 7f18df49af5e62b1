"""Signed usage reports for true-up (issue 20): the hash chain, its signed heads, the report
file, the counts, and their verification. Pure: nothing here reads a clock or a file.

Rules (docs/vendor.md "Usage reports" explains them for vendors):

1. **The host keeps a hash chain of the count-relevant events** of its database: ``seen`` (a
   CMID first counted in a group, or counted again after it expired), ``renewed`` (a counted
   CMID asked again), ``expired`` (it left the 30-day window), ``blocked``, ``unblocked``.
   Event ``seq`` is 1, 2, 3, … per database (several hosts sharing one database share one
   chain) and ``hash(seq) = SHA-256(hash(seq - 1) ‖ canonical event)``, ``hash(0)`` =
   :data:`GENESIS`. An event is ``[seq, at, kind, group, cmid, host_id]``.
2. **A host signs the head** (``seq``, ``hash``) with its certified key now and then (each time
   it records events, and before it exports a report): a token of kind ``usage_head``, payload
   ``{"v": 1, "seq", "hash", "at", "host_id", "cert_id"}``.
3. **A report** (``volact-usage-report``, v1) is a contiguous run of events ``first_seq`` …
   ``last_seq`` with every event's hash, the hash before it (``prev_hash``), the signed heads in
   that run (the last one at ``last_seq``), the certificates of the hosts that signed, and the
   counts: per group and day the distinct CMIDs that asked (``seen``/``renewed``; blocked CMIDs
   excluded), and per group and month that month's distinct CMIDs (the true-up figure) and its
   peak day.
4. **Verification** (:func:`verify_report`) names the first place that fails: an event missing
   (a deleted event: a gap in ``seq``) or out of order, an event whose hash does not follow (an
   edited or reordered event), a head whose signed hash differs from the chain (events edited
   and re-hashed), a tail after the last signed head, a count that differs from the events, a
   certificate or head signature that does not verify. With the previous report, a gap or an
   overlap between the two is reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from volact import crypto
from volact.core import validate
from volact.core.errors import BadRequest, InvalidHostCertificate, UnsupportedVersion
from volact.core.tickets import HostCertificate, verify_certificate

REPORT_FORMAT = "volact-usage-report"
REPORT_VERSION = 1
HEAD_KIND = "usage_head"
HEAD_VERSION = 1
GENESIS = "0" * 64
KINDS = ("seen", "renewed", "expired", "blocked", "unblocked")
SEEN_KINDS = frozenset({"seen", "renewed"})
DAY = 86400
MAX_REPORT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class UsageEvent:
    seq: int
    at: int
    kind: str
    group: str
    cmid: str
    host_id: str

    def row(self) -> list[Any]:
        return [self.seq, self.at, self.kind, self.group, self.cmid, self.host_id]


def event_hash(previous: str, event: UsageEvent) -> str:
    """Rule 1: the chain hash after ``event``."""
    canonical = json.dumps(event.row(), separators=(",", ":")).encode()
    return hashlib.sha256(previous.encode("ascii") + canonical).hexdigest()


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    at: int
    host_id: str
    cert_id: str
    token: str = field(default="", compare=False)

    def payload(self) -> dict[str, Any]:
        return {
            "v": HEAD_VERSION,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "host_id": self.host_id,
            "cert_id": self.cert_id,
        }


def sign_head(host_key: crypto.SigningKey, head: Head) -> str:
    """Rule 2: the head's token, signed with the host's certified key."""
    return crypto.sign(host_key, HEAD_KIND, head.payload())


def day_of(at: int) -> str:
    """The UTC day of a Unix time, ``YYYY-MM-DD`` (pure: no clock, arithmetic only)."""
    days = at // DAY
    # Civil-from-days (Howard Hinnant's algorithm), so that core needs no datetime.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return f"{year + (month <= 2):04d}-{month:02d}-{day:02d}"


def counts(events: Iterable[UsageEvent]) -> dict[str, Any]:
    """Rule 3's counts over ``events`` (each counted on the UTC day of its ``at``; consecutive
    reports partition the chain, so a day split between two reports is summed by the reader).

    ``{"daily": {group: {day: n}}, "monthly": {group: {month: {"distinct": n, "peak": n}}}}``.
    """
    blocked: set[tuple[str, str]] = set()
    daily: dict[str, dict[str, set[str]]] = {}
    monthly: dict[str, dict[str, set[str]]] = {}
    for event in sorted(events, key=lambda e: e.seq):
        key = (event.group, event.cmid)
        if event.kind == "blocked":
            blocked.add(key)
        elif event.kind == "unblocked":
            blocked.discard(key)
        if event.kind not in SEEN_KINDS or key in blocked:
            continue
        day = day_of(event.at)
        daily.setdefault(event.group, {}).setdefault(day, set()).add(event.cmid)
        monthly.setdefault(event.group, {}).setdefault(day[:7], set()).add(event.cmid)
    return {
        "daily": {
            group: {day: len(cmids) for day, cmids in sorted(days.items())}
            for group, days in sorted(daily.items())
        },
        "monthly": {
            group: {
                month: {
                    "distinct": len(cmids),
                    "peak": max(
                        n
                        for day, n in ((d, len(c)) for d, c in daily[group].items())
                        if day.startswith(month)
                    ),
                }
                for month, cmids in sorted(months.items())
            }
            for group, months in sorted(monthly.items())
        },
    }


@dataclass(frozen=True)
class Report:
    """A usage report (rule 3), as written or as read back."""

    vendor_id: str
    start: int
    end: int
    prev_hash: str
    events: tuple[UsageEvent, ...]
    hashes: tuple[str, ...]
    heads: tuple[str, ...]  # head tokens
    certificates: tuple[str, ...]
    counted: Mapping[str, Any]

    @property
    def first_seq(self) -> int:
        return self.events[0].seq if self.events else 0

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0

    @property
    def last_hash(self) -> str:
        return self.hashes[-1] if self.hashes else self.prev_hash

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "v": REPORT_VERSION,
            "vendor_id": self.vendor_id,
            "from": self.start,
            "to": self.end,
            "first_seq": self.first_seq,
            "prev_hash": self.prev_hash,
            "events": [
                [*event.row(), digest]
                for event, digest in zip(self.events, self.hashes, strict=True)
            ],
            "heads": list(self.heads),
            "certificates": list(self.certificates),
            # A copy: the caller may change the document without changing the report.
            **json.loads(json.dumps(self.counted)),
        }

    def to_file(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":")) + "\n"


def build_report(
    *,
    vendor_id: str,
    start: int,
    end: int,
    prev_hash: str,
    events: Sequence[UsageEvent],
    hashes: Sequence[str],
    heads: Sequence[str],
    certificates: Sequence[str],
) -> Report:
    return Report(
        vendor_id,
        start,
        end,
        prev_hash,
        tuple(events),
        tuple(hashes),
        tuple(heads),
        tuple(dict.fromkeys(certificates)),
        counts(events),
    )


# --- reading and verifying --------------------------------------------------------------------


def read_report(source: str | bytes) -> Report:
    """Parse a report file (not yet verified). Raises BadRequest naming what is malformed."""
    if len(source) > MAX_REPORT_BYTES:
        raise BadRequest("the file is too large to be a usage report")
    try:
        data = validate.obj(json.loads(source), "the usage report")
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise BadRequest("the file is not JSON; it is not a usage report") from exc
    if data.get("format") != REPORT_FORMAT:
        raise BadRequest(f"this is not a usage report (format {data.get('format')!r})")
    if data.get("v") != REPORT_VERSION:
        raise UnsupportedVersion(f"usage report version {data.get('v')!r} is not supported")
    rows = data.get("events")
    if not isinstance(rows, list):
        raise BadRequest("the usage report's events must be a list")
    events: list[UsageEvent] = []
    hashes: list[str] = []
    for position, row in enumerate(rows):
        if (
            not isinstance(row, list)
            or len(row) != 7
            or not all(isinstance(row[i], int) and not isinstance(row[i], bool) for i in (0, 1))
            or not all(isinstance(row[i], str) for i in range(2, 7))
            or row[2] not in KINDS
        ):
            raise BadRequest(f"event {position + 1} of the usage report is malformed")
        events.append(UsageEvent(row[0], row[1], row[2], row[3], row[4], row[5]))
        hashes.append(row[6])
    return Report(
        vendor_id=validate.identifier(data, "vendor_id"),
        start=validate.integer(data, "from"),
        end=validate.integer(data, "to"),
        prev_hash=validate.hex_text(data, "prev_hash", min_len=64, max_len=64),
        events=tuple(events),
        hashes=tuple(hashes),
        heads=_tokens(data, "heads", max_len=4096),
        certificates=_tokens(data, "certificates", max_len=16384),
        counted={"daily": data.get("daily"), "monthly": data.get("monthly")},
    )


def _tokens(data: dict[str, Any], name: str, *, max_len: int) -> tuple[str, ...]:
    """The report's list of tokens ``name`` (absent: none)."""
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(token, str) and 0 < len(token) <= max_len for token in value
    ):
        raise BadRequest(
            f"the usage report's {name} must be a list of tokens (strings of at most "
            f"{max_len} characters)",
            {"field": name},
        )
    return tuple(value)


class ReportRefused(BadRequest):
    """A usage report that does not verify; the message names the place."""


def _certificates(report: Report, root_keys: list[crypto.VerifyKey]) -> dict[str, HostCertificate]:
    found: dict[str, HostCertificate] = {}
    for token in report.certificates:
        try:
            certificate = verify_certificate(token, root_keys, vendor_id=report.vendor_id)
        except InvalidHostCertificate as exc:
            raise ReportRefused(f"a host certificate in the report does not verify: {exc}") from exc
        found[certificate.cert_id] = certificate
    return found


def _heads(report: Report, certificates: Mapping[str, HostCertificate]) -> dict[int, Head]:
    heads: dict[int, Head] = {}
    for position, token in enumerate(report.heads, 1):
        try:
            footer_payload = json.loads(crypto.unverified_payload(token))
            cert_id = str(footer_payload.get("cert_id"))
        except (crypto.SignatureError, ValueError, AttributeError) as exc:
            raise ReportRefused(f"signed head {position} is damaged") from exc
        certificate = certificates.get(cert_id)
        if certificate is None:
            raise ReportRefused(
                f"signed head {position} names certificate {cert_id}, not in the report"
            )
        try:
            payload = crypto.verify(
                token, HEAD_KIND, [crypto.VerifyKey.from_paserk(certificate.host_key)]
            )
        except (crypto.SignatureError, crypto.KeyFormatError) as exc:
            raise ReportRefused(
                f"signed head {position} does not verify under host {certificate.host_id}'s key"
            ) from exc
        head = Head(
            validate.integer(payload, "seq"),
            validate.string(payload, "hash", max_len=64),
            validate.integer(payload, "at"),
            validate.string(payload, "host_id", max_len=64),
            validate.string(payload, "cert_id", max_len=64),
            token,
        )
        if head.host_id != certificate.host_id:
            raise ReportRefused(f"signed head {position} names another host than its certificate")
        if not certificate.not_before <= head.at <= certificate.not_after:
            raise ReportRefused(
                f"signed head {position} was signed outside its certificate's validity"
            )
        heads[head.seq] = head
    return heads


def verify_report(
    report: Report, root_keys: list[crypto.VerifyKey], *, previous: Report | None = None
) -> tuple[HostCertificate, ...]:
    """Rule 4. Raises :class:`ReportRefused` naming the first place that fails; returns the
    certificates whose heads the report holds (whose report it is: customer, host key, hosts)."""
    certificates = _certificates(report, root_keys)
    heads = _heads(report, certificates)
    if not report.events:
        raise ReportRefused("the usage report holds no events")
    previous_hash = report.prev_hash
    expected_seq = report.first_seq
    for event, listed in zip(report.events, report.hashes, strict=True):
        if event.seq > expected_seq:
            missing = (
                f"{expected_seq}"
                if event.seq == expected_seq + 1
                else f"{expected_seq}–{event.seq - 1}"
            )
            raise ReportRefused(f"event {missing} is missing from the chain (deleted)")
        if event.seq < expected_seq:
            raise ReportRefused(
                f"event {event.seq} is out of order (after event {expected_seq - 1})"
            )
        computed = event_hash(previous_hash, event)
        if computed != listed:
            raise ReportRefused(
                f"event {event.seq} does not follow the chain (edited, or moved from elsewhere)"
            )
        head = heads.get(event.seq)
        if head is not None and head.hash != computed:
            raise ReportRefused(
                f"the chain up to event {event.seq} differs from what host {head.host_id} signed "
                "(events before it were edited, deleted or reordered and re-hashed)"
            )
        previous_hash = computed
        expected_seq += 1
    if report.last_seq not in heads:
        raise ReportRefused(
            f"events after the last signed head (up to {report.last_seq}) are unsigned"
        )
    recomputed = counts(report.events)
    for table in ("daily", "monthly"):
        stated = report.counted.get(table)
        if stated != recomputed[table]:
            raise ReportRefused(_count_difference(table, stated, recomputed[table]))
    if previous is not None:
        if report.first_seq != previous.last_seq + 1 or report.prev_hash != previous.last_hash:
            raise ReportRefused(
                f"gap between the reports: the previous one ends at event {previous.last_seq}, "
                f"this one starts at event {report.first_seq}"
                + ("" if report.first_seq != previous.last_seq + 1 else " (and its chain differs)")
            )
    signers = {head.cert_id for head in heads.values()}
    return tuple(certificates[cert_id] for cert_id in sorted(signers))


def _count_difference(table: str, stated: Any, computed: Mapping[str, Any]) -> str:
    if not isinstance(stated, dict):
        return f"the report's {table} counts are missing"
    for group in sorted(set(stated) | set(computed)):
        mine, theirs = computed.get(group, {}), stated.get(group)
        if not isinstance(theirs, dict):
            return f"the {table} counts of group {group} are missing"
        for when in sorted(set(mine) | set(theirs)):
            if mine.get(when) != theirs.get(when):
                return (
                    f"the {table} count of group {group} on {when} is {theirs.get(when)!r}, "
                    f"the events give {mine.get(when)!r}"
                )
    return f"the report's {table} counts differ from its events"


def peaks_csv(report: Report) -> str:
    """The per-group monthly figures as CSV: ``group,month,distinct_clients,peak_day``."""
    lines = ["group,month,distinct_clients,peak_day"]
    monthly = report.counted.get("monthly") or {}
    for group, months in sorted(monthly.items()):
        for month, figures in sorted(months.items()):
            lines.append(f"{group},{month},{figures['distinct']},{figures['peak']}")
    return "\n".join(lines) + "\n"
