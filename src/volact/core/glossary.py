"""Every word that volact's output prints besides its error codes, said once.

``volact client status`` prints client states and reasons (``oot_grace``,
``oob_grace_expired``), ``volact host status`` prints request outcomes (``below_threshold``),
``volact host events`` prints event kinds (``cloned_image``) and the DNS publishing reasons
(``badkey``). Each is a :class:`Term` here, with a few words that the status lines show beside it
and the longer text ``volact explain WORD`` prints; the error codes are in
:data:`volact.core.errors.CODES`. A test collects every such word from the code and checks that
it is here (or is an error code).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GLOSSARY", "KINDS", "Term", "terms_of"]

KINDS = ("client state", "status reason", "request outcome", "event kind", "DNS publishing reason")


@dataclass(frozen=True)
class Term:
    term: str
    kind: str  # one of KINDS
    short: str  # a few words, shown beside the term
    explanation: str  # what `volact explain TERM` says it means
    remedy: str = ""  # what to do, when there is something to do


_ASK_IT = "Ask your IT department to check the activation host"

_TERMS = [
    # --- client states (SPEC §3) ----------------------------------------------------------
    Term(
        "unlicensed",
        "client state",
        "no product key installed",
        "No product key is installed for the product on this machine.",
        "Install the product key: `volact client install-key KEY --product-config FILE`.",
    ),
    Term(
        "oob_grace",
        "client state",
        "out-of-box grace: not activated yet",
        "A key is installed and the product works fully while it waits for its first "
        "activation, for the out-of-box grace (30 days by default) from the install.",
        "Nothing, if the machine is on the company network: the product activates by itself. "
        "`volact client status` says when the grace ends.",
    ),
    Term(
        "licensed",
        "client state",
        "activated",
        "The product is activated until its valid-until time and renews by itself before then.",
    ),
    Term(
        "oot_grace",
        "client state",
        "out-of-tolerance grace: the activation ran out and was not renewed",
        "The activation ended without a renewal; the product still works fully for the "
        "out-of-tolerance grace (30 days by default) while it keeps trying to renew.",
        "Connect the machine to the company network before the grace ends (`volact client "
        "status` says when); if it is connected, ask your IT department to check the "
        "activation host.",
    ),
    Term(
        "notification",
        "client state",
        "not activated; the app may reduce what it offers",
        "Neither activated nor in a grace period: the reason says why. The app decides what it "
        "still offers.",
        f"Connect the machine to the company network. {_ASK_IT}; the product activates at "
        "its next try, or at once with `volact client activate`.",
    ),
    # --- why a client is in notification (or why a stored activation did not count) -------
    Term(
        "oob_grace_expired",
        "status reason",
        "the out-of-box grace ran out before an activation",
        "The product was never activated within its out-of-box grace.",
        f"{_ASK_IT} and that this machine can reach it (`volact client diagnose`).",
    ),
    Term(
        "oot_grace_expired",
        "status reason",
        "the out-of-tolerance grace ran out without a renewal",
        "The activation ended and could not be renewed within the out-of-tolerance grace.",
        f"{_ASK_IT} and that this machine can reach it (`volact client diagnose`).",
    ),
    Term(
        "clock_tampered",
        "status reason",
        "the system clock went backwards; correct it, then activate",
        "The clock reads earlier than a time the client already trusted.",
        "Correct the system clock, then `volact client activate`.",
    ),
    Term(
        "invalid_ticket",
        "status reason",
        "the stored activation did not verify, so it does not count",
        "The activation kept in the state file does not verify for this machine (an edited "
        "or copied state file).",
        "Activate again: `volact client activate`.",
    ),
    Term(
        "invalid_host_certificate",
        "status reason",
        "the stored activation's host certificate did not verify",
        "The activation kept in the state file came from a host this product's vendor did "
        "not certify.",
        "Activate again through a host certified by the product's vendor.",
    ),
    # --- the host's request outcomes (`volact host status`, the events' `outcome`) --------
    Term(
        "activated",
        "request outcome",
        "a ticket was issued",
        "The host counted the client and answered it with a ticket.",
    ),
    Term(
        "below_threshold",
        "request outcome",
        "counted; not enough clients yet",
        "The host counted the client but the product group has fewer distinct clients than "
        "its threshold; the client got `count_insufficient` and retries.",
        "Nothing: clients activate once the count reaches the threshold.",
    ),
    Term(
        "blocked",
        "request outcome",
        "the CMID is blocked",
        "The admin blocked this CMID (`volact host block`); it got `client_blocked` and is "
        "not counted.",
        "`volact host unblock CMID` readmits it.",
    ),
    Term(
        "time_skew",
        "request outcome",
        "the client's clock is more than 4 hours off",
        "The client's clock differs from the host's by more than the tolerance; it got "
        "`time_skew` and was not counted.",
        "Fix the client machine's clock (NTP).",
    ),
    Term(
        "product_not_hosted",
        "request outcome",
        "the product's group is not in the host certificate",
        "The host is not certified for the product group of the request.",
        "Ask the vendor for a host key that covers the group.",
    ),
    Term(
        "invalid_key",
        "request outcome",
        "the request's key is not this product's GVLK",
        "The request carried a key that is not the product's volume key (GVLK).",
        "Install the product's GVLK on the client.",
    ),
    Term(
        "host_not_activated",
        "request outcome",
        "the host has no valid certificate",
        "The host is not certified, or its certificate is not valid now.",
        "On the host: `volact host activate`.",
    ),
    # --- event kinds (`volact host events`) -----------------------------------------------
    Term(
        "activation_request",
        "event kind",
        "a client asked",
        "One client request that passed the format checks, with its outcome, product, "
        "machine name, client state and address.",
    ),
    Term(
        "cloned_image",
        "event kind",
        "a known CMID came with another fingerprint",
        "The install was copied to another machine (a cloned image); the client makes a new "
        "CMID by itself.",
        "Look for one CMID with several machine names (`volact host events --json`); sysprep "
        "the image, or leave it: the clones re-identify themselves.",
    ),
    Term(
        "client_blocked",
        "event kind",
        "an admin blocked a CMID",
        "`volact host block` was run for the CMID.",
    ),
    Term(
        "client_unblocked",
        "event kind",
        "an admin readmitted a CMID",
        "`volact host unblock` was run for the CMID.",
    ),
    Term(
        "host_started",
        "event kind",
        "`volact host serve` started",
        "The host started, with whether it can activate and the version.",
    ),
    Term(
        "certificate_loaded",
        "event kind",
        "the running host took a new certificate",
        "`volact host activate` installed a certificate and the running host loaded it "
        "without a restart.",
    ),
    Term(
        "revocations_loaded",
        "event kind",
        "the running host took a newer revocation list",
        "A newer vendor revocation list (fetched from the vendor service or installed with "
        "`volact host install-revocations`) was taken up; the host now sends it in every "
        "answer. When the list names this host's own certificate, the host stops activating "
        "(the event's reason says so).",
    ),
    Term(
        "dns_published",
        "event kind",
        "the SRV record was published",
        "The host published (or refreshed) its SRV record by dynamic DNS update.",
    ),
    Term(
        "dns_publish_failed",
        "event kind",
        "publishing the SRV record failed",
        "A dynamic DNS update failed; the event's reason and error say why.",
        "See the reason (`volact explain REASON`) and docs/dns.md.",
    ),
    # --- why publishing the SRV record failed (`dns_publish_failed` reasons) --------------
    Term(
        "refused",
        "DNS publishing reason",
        "the DNS server refused the update",
        "The server answered REFUSED: the zone's update-policy does not grant the TSIG key "
        "the SRV name.",
        "Grant the key the name in the zone's update-policy (docs/dns.md).",
    ),
    Term(
        "notauth",
        "DNS publishing reason",
        "the DNS server is not authoritative, or rejected the key",
        "The server answered NOTAUTH.",
        "Send updates to the zone's primary server, with a key it knows.",
    ),
    Term(
        "badkey",
        "DNS publishing reason",
        "the DNS server does not know the TSIG key",
        "The key's name or algorithm matches no key in the server's configuration.",
        "Use the key name and algorithm of the server's named.conf.",
    ),
    Term(
        "badsig",
        "DNS publishing reason",
        "the TSIG signature was rejected",
        "The key's secret differs from the server's copy.",
        "Copy the key's secret from the server again.",
    ),
    Term(
        "badtime",
        "DNS publishing reason",
        "the clocks differ by more than 5 minutes",
        "The server rejected the time in the TSIG signature.",
        "Synchronise the clocks of the host and the DNS server (NTP).",
    ),
    Term(
        "notzone",
        "DNS publishing reason",
        "the name is outside the zone",
        "The SRV name is not inside the zone the update was sent to.",
        "Publish into the zone that contains the domain (`--publish-dns DOMAIN`).",
    ),
    Term(
        "servfail",
        "DNS publishing reason",
        "the DNS server failed to apply the update",
        "The server answered SERVFAIL.",
        "Look at the DNS server's log.",
    ),
    Term(
        "timeout",
        "DNS publishing reason",
        "the DNS server did not answer in time",
        "No answer came from the DNS server within the time-out.",
        "Check the server's address and port and the firewalls between host and server.",
    ),
    Term(
        "unreachable",
        "DNS publishing reason",
        "the DNS server could not be reached",
        "The connection to the DNS server failed.",
        "Check the server's address and port and the firewalls between host and server.",
    ),
    Term(
        "error",
        "DNS publishing reason",
        "another DNS failure",
        "The update failed in another way; the event's error says how.",
        "Read the event's error (`volact host events --kind dns_publish_failed`).",
    ),
]

GLOSSARY: dict[tuple[str, str], Term] = {(term.term, term.kind): term for term in _TERMS}


def terms_of(word: str) -> list[Term]:
    """Every meaning of ``word`` (a word can be an outcome and an event kind, say)."""
    return [term for (name, _), term in GLOSSARY.items() if name == word]
