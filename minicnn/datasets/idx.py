"""The IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number ``0 0 <type> <ndim>``, then ``ndim``
big-endian uint32 sizes, then the values in row-major order (big-endian).
"""
import gzip
import os
import struct
import zlib

import numpy as np

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def _read_bytes(path):
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read IDX file {path!r}: corrupt or truncated "
                         f"({exc.__class__.__name__}: {exc})") from None


def parse_idx(data, path="<bytes>"):
    """IDX bytes -> a NumPy array (uint8 stays uint8; others native-endian)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise ValueError(f"{path!r} is not an IDX file (bad magic number "
                         f"{data[:4].hex() if len(data) >= 4 else data.hex()!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"IDX file {path!r} is truncated: its header needs {header} bytes, "
                         f"it has {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_TYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"IDX file {path!r} is truncated or corrupt: shape {shape} needs "
                         f"{expected} bytes, the file has {len(data)}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path):
    """Read an IDX file (``.gz`` for gzip) into a NumPy array; clear errors name the file."""
    return parse_idx(_read_bytes(path), os.fspath(path))


def idx_bytes(array):
    """A uint8/int8 array as IDX bytes."""
    array = np.ascontiguousarray(array)
    code = _CODES.get(array.dtype)
    if code is None:
        raise TypeError(f"idx_bytes writes uint8 or int8 arrays, received {array.dtype}")
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.tobytes()


def write_idx_gz(path, array):
    """Write ``array`` as a gzip IDX file with a fixed timestamp, so the bytes are
    reproducible."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                filename="") as f:
        f.write(idx_bytes(array))
