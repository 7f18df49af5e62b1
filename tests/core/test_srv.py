from __future__ import annotations

import random
from collections import Counter

from volact.core.srv import SRVRecord, order_srv


def rec(priority: int, weight: int, port: int, target: str = "h") -> SRVRecord:
    return SRVRecord(priority, weight, port, target)


def test_lower_priority_always_first() -> None:
    records = [rec(20, 100, 1), rec(10, 0, 2), rec(10, 5, 3), rec(30, 1, 4)]
    for seed in range(50):
        ordered = order_srv(records, random.Random(seed).randint)
        assert [r.priority for r in ordered] == [10, 10, 20, 30]


def test_weights_spread_first_picks() -> None:
    records = [rec(0, 1, 1, "a"), rec(0, 3, 2, "b")]
    rng = random.Random(7)
    first = Counter(order_srv(records, rng.randint)[0].target for _ in range(4000))
    assert 0.70 < first["b"] / 4000 < 0.80


def test_zero_weight_comes_after_weighted_but_is_never_lost() -> None:
    records = [rec(0, 0, 1, "zero"), rec(0, 10, 2, "ten")]
    rng = random.Random(1)
    firsts = Counter(order_srv(records, rng.randint)[0].target for _ in range(200))
    assert firsts["ten"] == 200
    assert all(len(order_srv(records, rng.randint)) == 2 for _ in range(10))


def test_all_zero_weights_and_dot_target() -> None:
    records = [rec(0, 0, 1, "a"), rec(0, 0, 2, "b"), rec(0, 0, 3, ".")]
    ordered = order_srv(records, random.Random(3).randint)
    assert sorted(r.target for r in ordered) == ["a", "b"]
    assert order_srv([], random.Random(0).randint) == []


def test_deterministic_for_a_seed() -> None:
    records = [rec(0, w, p, f"h{p}") for p, w in enumerate([5, 10, 20, 40])]
    assert order_srv(records, random.Random(42).randint) == order_srv(
        records, random.Random(42).randint
    )


def test_zone_line() -> None:
    line = rec(0, 100, 7688, "kms1.example.com").zone_line("_volact._tcp.example.com")
    assert line == "_volact._tcp.example.com. 3600 IN SRV 0 100 7688 kms1.example.com."
