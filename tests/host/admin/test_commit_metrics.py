"""The store's commit metrics on each SQL store the host can run on, PostgreSQL included."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.host.conftest import Clock
from tests.host.helpers import body

from .conftest import Admin


def samples(text: str) -> dict[str, float]:
    """The exposition's unlabelled samples, by name (``volact_store_batch_size_sum``, …)."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                found[sample.name] = sample.value
    return found


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_store_commits_are_measured_on_sqlite_and_postgresql(
    admin: Admin, clock: Clock
) -> None:
    answers = await asyncio.gather(
        *(admin.hosts.post("/v1/activate", json=body(n, clock.now)) for n in range(12))
    )
    assert sorted(a.status_code for a in answers) == [200] * 8 + [409] * 4
    text = (await admin.http.get("/metrics", headers=admin.auth)).text
    found = samples(text)
    # Every activation is one write of a committed batch; concurrent ones may share one.
    assert found["volact_store_batch_size_sum"] == 12
    batches = found["volact_store_batch_size_count"]
    assert 1 <= batches <= 12
    assert found["volact_store_commit_seconds_count"] == batches
    assert found["volact_store_commit_seconds_sum"] > 0
