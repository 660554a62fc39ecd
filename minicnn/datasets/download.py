"""Fetch a file over HTTP(S), check its SHA-256, and move it into place atomically."""
import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib

from ..saving import atomic_write


def sha256_of(data, decompress=False):
    """Hex SHA-256 of ``data`` (of its gzip-decompressed content with ``decompress``)."""
    if decompress:
        data = gzip.decompress(data)
    return hashlib.sha256(data).hexdigest()


def fetch(url, dest, sha256, decompressed=False, timeout=30):
    """Download ``url`` to ``dest`` unless ``dest`` already exists.

    ``sha256`` is checked before anything is written at ``dest`` (over the
    gzip-decompressed bytes with ``decompressed=True``, so that any faithful
    recompression of a canonical file passes). The data go to a temporary file
    in the same directory, which is then renamed, so ``dest`` is never partial.
    Returns ``dest``. Raises ``ConnectionError`` when the network does not answer
    and ``ValueError`` on a checksum mismatch.
    """
    if os.path.exists(dest):
        return dest
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(f"cannot download {url}: {exc}") from None
    try:
        digest = sha256_of(data, decompressed)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"download of {url} is not valid gzip data ({exc})") from None
    if digest != sha256:
        raise ValueError(f"download of {url} failed its SHA-256 check: expected {sha256}, "
                         f"got {digest}; nothing was written")
    atomic_write(dest, lambda f: f.write(data))
    return dest
