from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from volact import paths
from volact.core.errors import BadRequest, NotFound, StorageError
from volact.fileio import read_json, write_atomic, write_private


def test_atomic_write_and_read(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    write_atomic(target, '{"a": 1}')
    assert read_json(target) == {"a": 1}
    write_atomic(target, '{"a": 2}')
    assert read_json(target) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_private_files_are_0600(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    write_private(target, b"secret")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_private_file_is_0600_even_over_a_stale_temporary_file(tmp_path: Path) -> None:
    # A crash (or another program) left a world-readable file where a write's temporary file
    # would go, or a symlink: neither may decide the new file's mode or where its bytes go.
    path = tmp_path / "request.json"
    elsewhere = tmp_path / "elsewhere"
    for pid in (os.getpid(), os.getpid() + 1):
        stale = tmp_path / f".{path.name}.{pid}.tmp"
        stale.write_text("stale")
        stale.chmod(0o644)
    (tmp_path / f".{path.name}.{os.getpid() + 2}.tmp").symlink_to(elsewhere)
    write_private(path, b"secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"secret"
    assert not elsewhere.exists()


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no state file"):
        read_json(tmp_path / "missing", what="state file")
    (tmp_path / "bad").write_text("{nope")
    with pytest.raises(BadRequest, match="not a valid"):
        read_json(tmp_path / "bad")
    (tmp_path / "big").write_bytes(b" " * 20)
    with pytest.raises(BadRequest, match="too large"):
        read_json(tmp_path / "big", limit=10)
    with pytest.raises(BadRequest, match="is a directory"):
        read_json(tmp_path)


def test_write_into_a_file_path_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot write"):
        write_atomic(blocker / "child.json", "{}")


def test_directory_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert paths.resolve_dir("host", str(tmp_path)) == tmp_path
    monkeypatch.setenv("VOLACT_HOST_DIR", str(tmp_path / "h"))
    assert paths.resolve_dir("host", None) == tmp_path / "h"
    monkeypatch.delenv("VOLACT_STATE_DIR", raising=False)
    monkeypatch.setattr(paths, "SYSTEM_ROOT", tmp_path / "system")
    assert paths.default_dir("client") == tmp_path / "system" / "client"
    monkeypatch.setattr(paths, "SYSTEM_ROOT", Path("/proc/volact-nope"))
    assert paths.default_dir("client").name == "client"
    assert "volact" in str(paths.default_dir("client"))
