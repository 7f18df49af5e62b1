"""Whatever a stranger puts into a file or a body, the readers raise a VolactError (a code and
one clear message) and never anything else."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.authority.helpers import make_world
from volact.authority.operations import Vendor
from volact.client import mak
from volact.core import offline
from volact.core.errors import VolactError

FORMATS = [
    offline.HOST_REQUEST_FORMAT,
    offline.HOST_RESPONSE_FORMAT,
    offline.MAK_REQUEST_FORMAT,
    offline.MAK_BATCH_FORMAT,
    offline.MAK_RESPONSE_FORMAT,
]
scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.floats()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# Files that look almost right: a known format, version 1, and odd fields.
near_files = st.fixed_dictionaries(
    {"format": st.sampled_from(FORMATS), "v": st.sampled_from([1, 1, 2, "1"])},
    optional={
        "token": st.text(max_size=40) | st.just("v4.public.eyJ2IjoxfQ.eyJ9"),
        "request": values,
        "requests": st.lists(values, max_size=3),
        "entries": st.lists(values, max_size=3),
        "vendor_id": values,
    },
)
fuzz = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    world = make_world(Path(tmp_path_factory.mktemp("fuzz")) / "vendor")
    opened = Vendor.open(world.path)
    yield opened
    opened.close()


@fuzz
@given(data=values | near_files)
def test_readers_raise_only_volact_errors(data: Any) -> None:
    text = json.dumps(data)
    readers: list[Callable[[Any], object]] = [
        offline.read_host_request,
        offline.read_host_response,
        offline.read_mak_requests,
        offline.read_mak_response,
        lambda source: mak.merge_mak_request_files([source]),
    ]
    for reader in readers:
        for source in (text, data if isinstance(data, dict) else text):
            with contextlib.suppress(VolactError):
                reader(source)


@fuzz
@given(data=values | near_files)
def test_fulfil_raises_only_volact_errors(vendor: Vendor, data: Any) -> None:
    with contextlib.suppress(VolactError):
        vendor.fulfil(json.dumps(data))
    assert vendor.store.certification_count() == 0
    assert vendor.store.mak_activation_count() == 0
