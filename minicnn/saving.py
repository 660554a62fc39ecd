"""Model files: one ``.npz`` (zip) archive, written atomically, read without pickle.

An archive holds a JSON header (format marker, version, architecture, compile
settings) stored as bytes, and plain numeric arrays: ``weights/0000``, ... and
``optimizer/<slot>/0000``, .... Nothing in it is a Python object, so loading a
file can never run code from it.

Atomic: the archive is written to a temporary file in the target's directory,
flushed to disk, then renamed over the target, so a crash never leaves a
half-written model where a good one was.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "minicnn"
VERSION = 1
_HEADER = "__minicnn_header__"


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, flush it to disk, then
    rename it over ``path``: readers see the old file or the new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".minicnn-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_archive(path, header, arrays):
    """Write ``header`` (JSON-able dict) and ``arrays`` (name -> array) to ``path``
    exactly as given (no suffix is added)."""
    path = os.fspath(path)
    header = dict(header, format=FORMAT, version=VERSION)
    payload = {_HEADER: np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError(f"refusing to save object array {name!r}")
        payload[name] = value
    # np.savez on a file object adds no ".npz" suffix: the path stays as given.
    atomic_write(path, lambda f: np.savez(f, **payload))


def read_archive(path, kind=None):
    """Return ``(header, arrays)``; a clear ``ValueError`` naming the file when it is
    missing, truncated, corrupt, not a minicnn file, or of another ``kind``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such model file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _HEADER not in data.files:
                raise ValueError(f"{path!r} is not a minicnn file (no minicnn header; "
                                 f"arrays: {data.files[:5]})")
            header = json.loads(bytes(data[_HEADER]).decode("utf-8"))
            arrays = {name: data[name] for name in data.files if name != _HEADER}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            json.JSONDecodeError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValueError) and "not a minicnn file" in str(exc):
            raise
        raise ValueError(f"cannot read {path!r}: not a minicnn file, or truncated or "
                         f"corrupt ({exc.__class__.__name__}: {exc})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a minicnn file (format {header.get('format')!r})")
    if header.get("version", 0) > VERSION:
        raise ValueError(f"{path!r} was written by a newer minicnn (file format version "
                         f"{header['version']}, this one reads up to {VERSION})")
    if kind is not None and header.get("kind") != kind:
        raise ValueError(f"{path!r} holds {header.get('kind')!r}, expected {kind!r}")
    return header, arrays


def indexed(prefix, arrays):
    """``{prefix/0000: a0, prefix/0001: a1, ...}`` for a list of arrays."""
    return {f"{prefix}/{i:04d}": a for i, a in enumerate(arrays)}


def unindexed(prefix, arrays):
    """The inverse of ``indexed``: the arrays under ``prefix`` in index order."""
    names = sorted(n for n in arrays if n.startswith(prefix + "/"))
    return [arrays[n] for n in names]


def read_plain_npz(path, required):
    """Arrays ``required`` from any ``.npz`` file (e.g. Keras's mnist.npz), never
    unpickling; a clear error names the file when it is corrupt or lacks a key."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in required if k not in data.files]
            if missing:
                raise KeyError(f"missing arrays {missing} (it has {data.files})")
            return {k: data[k] for k in required}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot read {path!r}: not a valid npz file, truncated, or "
                         f"missing data ({exc.__class__.__name__}: {exc})") from None
