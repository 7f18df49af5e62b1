"""A running host takes up a certificate installed by `volact host activate` without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from volact.core.errors import CountInsufficient, HostNotActivated
from volact.host.service import HostService
from volact.store import MemoryStore

from .helpers import body, make_host


def unwatched(service: HostService) -> HostService:
    """The service without its certificate watcher (set before it starts: a watcher already
    running could take up the new certificate between the test's steps): checked by hand."""
    service.certificate_check_interval = 0
    return service


async def test_a_certificate_installed_while_running_is_taken_up(tmp_path: Path) -> None:
    now = int(time.time())
    certified = make_host(tmp_path / "certified", now)
    bare = make_host(tmp_path / "bare", now, certified=False)
    # The bare host is the certified one before its certificate arrived: same keys and settings.
    bare.files.save_signing_key(certified.signer)
    bare.files.save_settings(certified.settings)
    store = MemoryStore()
    async with unwatched(HostService.from_files(bare.files, store, lambda: now)) as service:
        with pytest.raises(HostNotActivated):
            await service.activate(body(1, now), "127.0.0.1")
        assert await service.check_for_new_certificate() is False
        bare.files.save_certificate_token(certified.files.certificate_token())
        assert await service.check_for_new_certificate() is True
        # The certificate is in use: the request is counted (threshold 5), not refused.
        with pytest.raises(CountInsufficient):
            await service.activate(body(1, now), "127.0.0.1")
        assert service.health()["activated"] is True
        events = await store.events(kind="certificate_loaded")
        assert events and events[0].details["activated"] is True


async def test_a_bad_new_certificate_is_not_taken_up(tmp_path: Path) -> None:
    now = int(time.time())
    host = make_host(tmp_path / "host", now)
    other = make_host(tmp_path / "other", now)  # another host's certificate (other key)
    async with unwatched(HostService.from_files(host.files, MemoryStore(), lambda: now)) as service:
        before = service.certificate_status.token
        host.files.save_certificate_token(other.files.certificate_token())
        # Checked, found unusable (another host's), logged; the working certificate stays.
        assert await service.check_for_new_certificate() is False
        assert service.certificate_status.token == before
        assert service.health()["activated"] is True
        assert await service.check_for_new_certificate() is False  # not re-examined
