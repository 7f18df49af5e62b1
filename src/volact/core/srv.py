"""Ordering of DNS SRV targets by RFC 2782.

Targets are tried lowest priority first; inside one priority, a target is picked at random with
probability exactly proportional to its weight, then removed, and the pick repeats until none are
left. Weight-0 targets come after every weighted target of their priority (in random order among
themselves). RFC 2782's literal procedure gives weight-0 targets "a very small chance" and skews
the proportions slightly (a pick in 0..sum); we follow the common reading of Go's resolver instead,
so that admins get the split they asked for.
The random source is injected, so a test or a simulation is fully determined by its seed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate, groupby


@dataclass(frozen=True, order=True)
class SRVRecord:
    priority: int
    weight: int
    port: int
    target: str  # host name without the trailing dot

    def zone_line(self, owner: str, ttl: int = 3600) -> str:
        return f"{owner}. {ttl} IN SRV {self.priority} {self.weight} {self.port} {self.target}."


# A random source: randint(a, b) → an int in [a, b], as random.Random.randint.
RandInt = Callable[[int, int], int]


def order_srv(records: Iterable[SRVRecord], randint: RandInt) -> list[SRVRecord]:
    """The order in which to try ``records`` (RFC 2782). A lone ``"."`` target means "no
    service" and is dropped."""
    usable = sorted((r for r in records if r.target not in ("", ".")), key=lambda r: r.priority)
    ordered: list[SRVRecord] = []
    for _, same_priority in groupby(usable, key=lambda r: r.priority):
        remaining = sorted(same_priority, key=lambda r: (r.target, r.port))
        while remaining:
            total = sum(r.weight for r in remaining)
            if total == 0:
                ordered.append(remaining.pop(randint(0, len(remaining) - 1)))
                continue
            # The first record whose running weight sum reaches the pick.
            running = list(accumulate(r.weight for r in remaining))
            ordered.append(remaining.pop(bisect_left(running, randint(1, total))))
    return ordered
