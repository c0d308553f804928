"""The deployable checkpoints: every sub-folder of a checkpoints root (local path or URI) that holds a
ReVIOsA checkpoint (either kind, see interrvos.model.checkpoint); its id is the folder's name.

Each one carries a content hash (sha256 over its files' names and bytes) so an answer names exactly
which weights produced it. Hashing a multi-GB export takes seconds, so hashes are cached by the
files' (name, size, mtime) signature: a listing re-reads only the signature, and any change to a
file gives a new hash."""

from __future__ import annotations

import hashlib
import os
import posixpath
import threading
from typing import Any, Literal

import pyarrow.fs as pafs
from pydantic import BaseModel

from interrvos.data import storage
from interrvos.model.checkpoint import CheckpointError, read_config, read_info
from interrvos.serving.errors import NotFound

_CHUNK = 1 << 20
_hash_cache: dict[tuple, str] = {}
_hash_lock = threading.Lock()


class ModelInfo(BaseModel):
    """One deployable checkpoint, as GET /v1/models lists it."""

    id: str
    path: str
    name: str  # the model config's name (tiny, 1b, 4b, or a custom one)
    mode: str
    kind: Literal["trainable", "merged"]
    content_hash: str
    config: dict[str, Any]

    def provenance(self) -> dict[str, str]:
        """The `checkpoint` block of an answer."""
        return {"id": self.id, "content_hash": self.content_hash, "config_name": self.name, "mode": self.mode}


def _files(folder: str) -> list[tuple[str, int, int | None]]:
    """(relative path, size, mtime in ns or None) of every file under a folder, sorted by path."""
    fs, root = storage.resolve(folder)
    out = []
    for f in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if f.type != pafs.FileType.File:
            continue
        rel = posixpath.relpath(f.path, root) if storage.is_remote(folder) else os.path.relpath(f.path, root)
        out.append((rel.replace(os.sep, "/"), int(f.size or 0), f.mtime_ns))
    return sorted(out)


def content_hash(folder: str) -> str:
    """sha256 over every file's relative path and bytes (cached while no file's size or mtime changes)."""
    files = _files(folder)
    key = (storage.resolve(folder)[1] if not storage.is_remote(folder) else folder, tuple(files))
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    fs, root = storage.resolve(folder)
    join = posixpath.join if storage.is_remote(folder) else os.path.join
    digest = hashlib.sha256()
    for rel, size, _ in files:
        digest.update(f"{rel}\0{size}\0".encode())
        with fs.open_input_stream(join(root, rel)) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    value = digest.hexdigest()
    with _hash_lock:
        _hash_cache[key] = value
    return value


def model_info(checkpoint_id: str, path: str) -> ModelInfo:
    """The listing entry of one checkpoint folder (CheckpointError when it is not one)."""
    info = read_info(path)
    cfg = read_config(path)
    return ModelInfo(id=checkpoint_id, path=path, name=cfg.name, mode=cfg.mode, kind=info["kind"],
                     content_hash=content_hash(path), config=cfg.model_dump(mode="json"))  # fmt: skip


class CheckpointCatalog:
    """The checkpoints under `root`. A root that is itself a checkpoint folder lists just that one.
    Folders that are not checkpoints are skipped and reported in `problems` (name -> reason)."""

    def __init__(self, root: str):
        self.root = str(root)
        self.problems: dict[str, str] = {}

    def list(self) -> list[ModelInfo]:
        """Read afresh on every call, so checkpoints added (or changed) under the root appear."""
        problems: dict[str, str] = {}
        found: list[ModelInfo] = []
        if storage.exists(storage.join(self.root, "checkpoint.json")):
            candidates = [(_base_name(self.root), self.root)]
        else:
            candidates = [(name, storage.join(self.root, name)) for name in storage.list_dir(self.root)
                          if not name.startswith(".")]  # fmt: skip  # hidden: staging folders of a save
        for name, path in candidates:
            if not storage.is_dir(path):
                continue
            try:
                found.append(model_info(name, path))
            except (CheckpointError, OSError) as err:
                problems[name] = str(err)
        self.problems = problems
        return found

    def ids(self) -> list[str]:
        return [m.id for m in self.list()]

    def get(self, checkpoint_id: str) -> ModelInfo:
        models = self.list()
        for m in models:
            if m.id == checkpoint_id:
                return m
        known = ", ".join(m.id for m in models) or "none"
        why = f" ({self.problems[checkpoint_id]})" if checkpoint_id in self.problems else ""
        raise NotFound(f"unknown checkpoint {checkpoint_id!r}{why}; known checkpoints: {known}",
                       extra={"checkpoint": checkpoint_id, "known": [m.id for m in models]})  # fmt: skip

    def load(self, checkpoint_id: str, device: str = "auto", dtype: str = "auto"):
        """(model, info) for an id: the info is read at load time, so its hash names the loaded weights."""
        info = self.get(checkpoint_id)
        return load_model(info, device, dtype), info


def _base_name(uri: str) -> str:
    return posixpath.basename(str(uri).rstrip("/")) if storage.is_remote(uri) else os.path.basename(
        os.path.abspath(uri))  # fmt: skip


def load_model(info: ModelInfo, device: str = "auto", dtype: str = "auto", overrides: list[str] | None = None):
    """The checkpoint's model on `device` in `dtype` ("auto": cuda if present, bf16 on cuda), in eval mode."""
    from interrvos.model.checkpoint import load_checkpoint
    from interrvos.model.predict import resolve_device

    dev, dt = resolve_device(device, dtype)
    return load_checkpoint(info.path, overrides).to(dev, dt).eval()
