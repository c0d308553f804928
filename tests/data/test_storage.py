"""Local paths and remote URIs through one code path (fsspec's in-memory filesystem stands in for s3://)."""

from __future__ import annotations

import os

import pytest

from interrvos.data import storage


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "store")
    return f"memory://interrvos-test-{os.getpid()}-{id(request)}"


def test_write_read_list_remove(root):
    storage.write_json(storage.join(root, "a", "x.json"), {"k": [1, 2]})
    storage.write_bytes(storage.join(root, "a", "y.bin"), b"\x00\x01")
    assert storage.read_json(storage.join(root, "a", "x.json")) == {"k": [1, 2]}
    assert storage.read_bytes(storage.join(root, "a", "y.bin")) == b"\x00\x01"
    assert storage.list_dir(storage.join(root, "a")) == ["x.json", "y.bin"]
    assert storage.is_dir(storage.join(root, "a")) and storage.exists(storage.join(root, "a", "x.json"))
    assert storage.list_dir(storage.join(root, "missing")) == []
    storage.remove_tree(storage.join(root, "a"))
    assert not storage.exists(storage.join(root, "a", "x.json"))


def test_local_path_gives_a_readable_file(root):
    uri = storage.join(root, "v.bin")
    storage.write_bytes(uri, b"payload")
    with storage.local_path(uri) as p:
        assert open(p, "rb").read() == b"payload"


def test_staged_dir_publishes_only_on_success(root):
    final = storage.join(root, "frames", "clip0")
    with pytest.raises(RuntimeError):
        with storage.staged_dir(final) as tmp:
            open(os.path.join(tmp, "00000.jpg"), "wb").write(b"half")
            raise RuntimeError("killed mid-way")
    assert not storage.exists(final)
    for content in (b"first", b"second"):  # a re-run replaces the folder as a whole
        with storage.staged_dir(final) as tmp:
            open(os.path.join(tmp, "00000.jpg"), "wb").write(content)
    assert storage.list_dir(final) == ["00000.jpg"]
    assert storage.read_bytes(storage.join(final, "00000.jpg")) == b"second"


def test_local_writes_leave_no_temporary_files(tmp_path):
    storage.write_json(str(tmp_path / "out.json"), {"a": 1})
    storage.write_json(str(tmp_path / "out.json"), {"a": 2})
    assert os.listdir(tmp_path) == ["out.json"]
