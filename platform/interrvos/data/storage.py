"""One code path for local paths and remote URIs (s3://, gs://, ...), through pyarrow filesystems.

Every write is atomic: data goes to a temporary sibling and is then renamed, so a reader (or a
re-run after a kill) never sees a half-written file. Object stores publish a PUT atomically,
so there the temporary step is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs


def is_remote(uri: str) -> bool:
    return "://" in str(uri) and not str(uri).startswith("file://")


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """Return (filesystem, path inside it) for a local path or a URI."""
    uri = str(uri)
    if not is_remote(uri):
        return pafs.LocalFileSystem(), os.path.abspath(uri.removeprefix("file://"))
    try:
        return pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError):  # pyarrow.ArrowInvalid is a ValueError
        # Schemes pyarrow does not know natively go through fsspec (installed with the package).
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def join(base: str, *parts: str) -> str:
    base = str(base)
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_dir(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def makedirs(uri: str) -> None:
    fs, path = resolve(uri)
    fs.create_dir(path, recursive=True)


def list_dir(uri: str) -> list[str]:
    """Base names of the entries directly under a folder (sorted); empty if it does not exist."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
    return sorted(posixpath.basename(i.path.rstrip("/")) for i in infos)


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Atomically write bytes (temp file + rename locally; a single PUT on object stores)."""
    fs, path = resolve(uri)
    parent = posixpath.dirname(path) if is_remote(uri) else os.path.dirname(path)
    fs.create_dir(parent, recursive=True)
    if is_remote(uri):
        with fs.open_output_stream(path) as f:
            f.write(data)
        return
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def write_json(uri: str, obj: Any, indent: int | None = None) -> None:
    write_bytes(uri, json.dumps(obj, indent=indent, sort_keys=False).encode("utf-8"))


def remove_tree(uri: str) -> None:
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(path)


def sweep_temporaries(uri: str) -> int:
    """Remove the temporary siblings a killed writer left directly under a local folder; returns how many."""
    if is_remote(uri):
        return 0  # object-store writes are single PUTs: nothing half-written to sweep
    folder = resolve(uri)[1]
    if not os.path.isdir(folder):
        return 0
    stale = [n for n in os.listdir(folder) if ".tmp-" in n]
    for name in stale:
        path = os.path.join(folder, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return len(stale)


@contextlib.contextmanager
def local_path(uri: str) -> Iterator[str]:
    """A local file path for reading `uri` (a temporary download when it is remote)."""
    if not is_remote(uri):
        yield resolve(uri)[1]
        return
    suffix = posixpath.splitext(uri)[1]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(read_bytes(uri))
        tmp.flush()
        yield tmp.name


@contextlib.contextmanager
def staged_dir(final_uri: str) -> Iterator[str]:
    """A local folder to fill; on success it replaces `final_uri` as a whole (atomic rename locally,
    upload of every file then to the remote prefix). On error nothing appears at `final_uri`."""
    if is_remote(final_uri):
        tmp = tempfile.mkdtemp(prefix="interrvos-stage-")
        try:
            yield tmp
            remove_tree(final_uri)  # a re-run replaces the whole folder, stale files included
            for root, _, files in os.walk(tmp):
                for name in files:
                    rel = os.path.relpath(os.path.join(root, name), tmp)
                    with open(os.path.join(root, name), "rb") as f:
                        write_bytes(posixpath.join(final_uri, rel.replace(os.sep, "/")), f.read())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    final = resolve(final_uri)[1]
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-", dir=parent)
    try:
        yield tmp
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
