"""`volact explain` answers for every code and word that any output prints, collected from the
code itself (not from a list kept beside it), and offers "did you mean" for a near miss."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli_run import run
from tests.docs.test_docs_truth import event_kinds_in_code
from volact.core.client_record import NOTIFICATION_REASONS
from volact.core.errors import CODES
from volact.core.glossary import GLOSSARY, KINDS
from volact.core.host_machine import Outcome
from volact.core.states import State

SRC = Path(__file__).resolve().parents[1] / "src" / "volact"


def dns_publish_reasons() -> set[str]:
    """The ``reason`` words of ``dns_publish_failed`` events, from net/dns.py and the publisher."""
    dns_source = (SRC / "net" / "dns.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r"DNSPublishError\(\s*\"([a-z]+)\"", dns_source))
    reasons |= set(re.findall(r"dns\.rcode\.[A-Z]+: \(\s*\"([a-z]+)\"", dns_source))
    reasons |= set(re.findall(r"hints\.get\(rcode, \(\"([a-z]+)\"", dns_source))
    publisher = (SRC / "host" / "publisher.py").read_text(encoding="utf-8")
    reasons |= set(re.findall(r"error\.reason if .* else \"([a-z]+)\"", publisher))
    return reasons


def printed_words() -> set[str]:
    """Every code and word volact prints: error codes (last_error, the one-line errors), client
    states and reasons (client status), request outcomes (host status, events), event kinds
    (host events) and DNS publishing reasons (host status, events)."""
    words = set(CODES)
    words |= {state.value for state in State}
    words |= set(NOTIFICATION_REASONS)
    words |= {outcome.value for outcome in Outcome}
    words |= event_kinds_in_code()
    words |= dns_publish_reasons()
    return words


def test_the_collection_finds_words_of_every_kind() -> None:
    words = printed_words()
    for sample in ("oob_grace_expired", "below_threshold", "certificate_loaded", "badkey"):
        assert sample in words
    assert {"refused", "timeout", "unreachable", "error"} <= dns_publish_reasons()


def test_every_printed_word_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    unexplained = []
    for word in sorted(printed_words()):
        status, out, err = run(capsys, "explain", word)
        if status != 0 or not out.startswith(f"{word} (") or "What it means:" not in out:
            unexplained.append(f"{word}: {err.strip() or out[:60]}")
    assert unexplained == []


def test_the_glossary_has_only_known_kinds_and_no_stale_words() -> None:
    words = printed_words()
    for (term, kind), entry in GLOSSARY.items():
        assert kind in KINDS and entry.kind == kind
        assert term in words, f"the glossary explains {term!r}, which nothing prints"


def test_a_word_that_is_a_code_and_a_reason_shows_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "explain", "clock_tampered")
    assert status == 0
    assert "clock_tampered (error code, from client)" in out
    assert "clock_tampered (status reason)" in out
    assert "From the SDK: Correct the system clock, then call `License.activate()`." in out
    status, out, _ = run(capsys, "explain", "OOT-GRACE-EXPIRED", "--json")
    entry = json.loads(out)
    assert entry["word"] == "oot_grace_expired"
    assert [m["kind"] for m in entry["meanings"]] == ["status reason"]


def test_a_near_miss_gets_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "explain", "oob_grace_expird")
    assert (status, out) == (1, "")
    assert err.startswith("not_found: no error code or other word 'oob_grace_expird' is known;")
    assert "did you mean oob_grace_expired" in err
    status, _, err = run(capsys, "explain", "blokced")
    assert status == 1 and "did you mean blocked" in err
    status, _, err = run(capsys, "explain", "zzzz", "--json")
    assert status == 1 and "did you mean" not in err
