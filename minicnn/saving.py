"""Model files: one ``.npz`` (zip) archive, written atomically, read without pickle.

An archive holds a JSON header (format marker, version, architecture, compile
settings) stored as bytes, and plain numeric arrays: ``weights/0000``, ... and
``optimizer/<slot>/0000``, .... Nothing in it is a Python object, so loading a
file can never run code from it; what else a loader checks is ``minicnn.file_checks``.

Atomic: the archive is written to a temporary file in the target's directory,
flushed to disk, then renamed over the target, so a crash never leaves a
half-written model where a good one was. The new file gets the mode ``open()`` would
give it (the umask's), an overwritten one keeps its mode, and a symbolic link is
written through (the link stays a link). A temporary file is named after its host
and process, so a save removes those that writers killed earlier left behind, and
only those.
"""
import json
import os
import re
import socket
import stat
import tempfile
import threading
import zipfile

import numpy as np

from . import file_checks
from .file_checks import ModelFileError, refuse

FORMAT = "minicnn"
VERSION = 1
_HEADER = "__minicnn_header__"
_TEMP_PREFIX = ".minicnn-"
_umask_lock = threading.Lock()


def _host():
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() or "host")[:64]


def _umask():
    """The process's umask, read without changing it where Linux tells it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or cannot tell: leave its file alone
    return True


def remove_stale_temporaries(directory):
    """Delete the temporary files that saves on this host left in ``directory`` when
    their process died (killed mid-save); those of live processes stay."""
    prefix = f"{_TEMP_PREFIX}{_host()}-"
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = re.fullmatch(re.escape(prefix) + r"(\d+)-[^/]*\.tmp", name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        full = os.path.join(directory, name)
        try:
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.unlink(full)
        except OSError:
            pass  # another save removed it first, or it is not ours to remove


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, flush it to disk, then
    rename it over ``path``: readers see the old file or the new one, never a part."""
    target = os.path.realpath(os.fspath(path))  # through a symlink: the link stays
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(directory)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{_host()}-{os.getpid()}-",
                               suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
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


class Archive:
    """An open minicnn archive: its checked header, and its arrays, each read only
    after its shape and dtype (from the member's own header) are the expected ones.
    Use as a context manager; every error names the file."""

    def __init__(self, path, kind=None):
        self.path = os.fspath(path)
        self._file = file_checks.open_regular(self.path)
        try:
            with file_checks.reading(self.path):
                self._zip = zipfile.ZipFile(self._file)
                self.header = self._read_header(kind)
                self.names = {n[:-4] if n.endswith(".npy") else n: n
                              for n in self._zip.namelist() if n != _HEADER + ".npy"}
        except BaseException:
            self._file.close()
            raise

    def _read_header(self, kind):
        path = self.path
        if _HEADER + ".npy" not in self._zip.namelist():
            refuse(path, f"is not a minicnn file (no minicnn header; arrays: "
                         f"{self._zip.namelist()[:5]})")
        stored = file_checks.Stored.from_zip(self._zip, _HEADER + ".npy", path)
        if len(stored.shape) != 1 or stored.dtype != np.uint8 \
                or stored.shape[0] > file_checks.MAX_JSON_BYTES:
            refuse(path, f"its header is not a minicnn header (shape {stored.shape}, "
                         f"dtype {stored.dtype})")
        header = file_checks.parse_json(bytes(stored.read()), path, "its header")
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            refuse(path, f"is not a minicnn file (format "
                         f"{header.get('format') if isinstance(header, dict) else header!r})")
        version = header.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            refuse(path, f"its format version {version!r} is not a number")
        if version > VERSION:
            refuse(path, f"was written by a newer minicnn (file format version {version}, "
                         f"this one reads up to {VERSION})")
        if kind is not None and header.get("kind") != kind:
            refuse(path, f"holds {header.get('kind')!r}, expected {kind!r}")
        return header

    def count(self, prefix):
        """How many arrays are stored under ``prefix/``."""
        return sum(1 for n in self.names if n.startswith(prefix + "/"))

    def stored(self, name):
        """The array ``name`` as a ``file_checks.Stored`` (shape and dtype known, data
        not yet read)."""
        if name not in self.names:
            refuse(self.path, f"has no array {name!r}")
        with file_checks.reading(self.path):
            return file_checks.Stored.from_zip(self._zip, self.names[name], self.path)

    def array(self, name, shape, kinds="f"):
        """Array ``name``, checked against ``shape`` and ``kinds`` before it is read."""
        stored = self.stored(name)
        with file_checks.reading(self.path):
            return file_checks.read_checked(self.path, stored, name, shape, kinds)

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def load_model(path):
    """``keras.saving.load_model``: ``minicnn.models.load_model``."""
    from .models import load_model as load
    return load(path)


def save_model(model, path):
    """``keras.saving.save_model``: ``model.save(path)``."""
    model.save(path)


def indexed(prefix, arrays):
    """``{prefix/0000: a0, prefix/0001: a1, ...}`` for a list of arrays."""
    return {f"{prefix}/{i:04d}": a for i, a in enumerate(arrays)}


def read_plain_npz(path, required):
    """Arrays ``required`` from any ``.npz`` file (e.g. Keras's mnist.npz), never
    unpickling; a clear error names the file when it is corrupt or lacks a key."""
    try:
        with file_checks.open_regular(path) as f, np.load(f, allow_pickle=False) as data:
            missing = [k for k in required if k not in data.files]
            if missing:
                raise KeyError(f"missing arrays {missing} (it has {data.files})")
            return {k: data[k] for k in required}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot read {path!r}: not a valid npz file, truncated, or "
                         f"missing data ({exc.__class__.__name__}: {exc})") from None
