"""What a model file may make minicnn do: the checks every loader runs.

Model files travel (downloaded checkpoints, a colleague's ``.keras`` archive), so a
loader treats each one as hostile until checked. Every loader (``.npz``, ``.keras``,
``.weights.h5``, legacy ``.h5``) goes through the same steps:

1. **Only a regular file's own bytes.** ``open_regular`` refuses a FIFO, a device
   (a link to ``/dev/zero`` included), a directory or a socket before reading a
   byte. In HDF5, ``check_h5_tree`` refuses external links, soft links, external
   storage and virtual datasets: each would read another file's bytes.
2. **Bounded work.** A zip member's size is read from its header and compared with a
   cap before it is inflated (``read_member``); JSON is bounded in size and nesting
   (``parse_json``); the architecture a file declares is sized before it is built
   (``check_declared_size``); and every array's shape and dtype are compared with what
   the architecture expects before its data is read (``read_checked``).
3. **Closed tables, typed configs.** Classes named in a file are looked up only in
   tables of what minicnn implements; each config value is type-checked
   (``check_types``): a string where a bool belongs is an error naming the key
   (both in ``minicnn.config_types``).
4. **One validation step between reading and using.** Weights and optimizer slots
   must be finite (Adam's second moments and BatchNormalization's moving variance
   also non-negative), the step count a whole number from 0 up.
5. **Every error names the file.** ``reading(path)`` turns whatever a library raised
   (zipfile, zlib, h5py, json, NumPy) into a ``ModelFileError`` naming the file and
   saying what is wrong, chained to the original.

Nothing in a file is executed or unpickled.
"""
import contextlib
import json
import math
import numbers
import os
import stat

import numpy as np

MAX_JSON_BYTES = 16 * 2**20        # a config or header; Keras's for AlexNet is ~10 KiB
MAX_JSON_DEPTH = 64                # Keras's configs nest about 8 deep
MAX_H5_OBJECTS = 100_000           # links walked in one HDF5 file
MAX_H5_ATTRIBUTE_BYTES = 16 * 2**20
NPY_HEADER_BYTES = 64 * 2**10      # room for a .npy header beside its data


class ModelFileError(ValueError):
    """A model file that cannot be loaded; the message starts with the file's path."""

    def __init__(self, path, what):
        self.path = os.fspath(path)
        super().__init__(f"{self.path!r}: {what}")


def refuse(path, what):
    raise ModelFileError(path, what)


@contextlib.contextmanager
def reading(path):
    """Whatever goes wrong inside becomes a ``ModelFileError`` naming ``path`` (or, for
    memory, a ``MemoryError`` naming it), chained to what was raised. Errors that
    already name the file, a missing file and a missing optional library pass as
    they are."""
    try:
        yield
    except (ModelFileError, FileNotFoundError, ImportError):
        raise
    except MemoryError as exc:
        raise MemoryError(f"{os.fspath(path)!r}: not enough memory to read it") from exc
    except Exception as exc:  # zipfile, zlib, h5py, json, NumPy, ...: name the file
        raise ModelFileError(path, f"cannot be read: truncated, corrupt or not what its "
                                   f"suffix says ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------------------------
# 1. only a regular file's own bytes
# ---------------------------------------------------------------------------------
def _kind(mode):
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def open_regular(path):
    """``path`` opened for binary reading if it is a regular file (after following
    links); anything else is refused at once, before a byte is read. Opening does not
    block: a FIFO with no writer is refused, not waited on."""
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such model file: {path!r}") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot be opened ({exc.strerror or exc})") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            refuse(path, f"is a {_kind(mode)}, not a regular file; model files are read "
                         f"only from regular files")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_h5_tree(f, path):
    """Walk every link of an open HDF5 file: only hard links to groups and datasets
    whose data lie in this file. External links, soft links, datasets in external
    storage and virtual datasets are refused, as Keras 3 refuses them."""
    h5py = _h5py()
    seen, groups = 0, [f]
    while groups:
        group = groups.pop()
        for name in group:
            seen += 1
            if seen > MAX_H5_OBJECTS:
                refuse(path, f"holds more than {MAX_H5_OBJECTS:,} HDF5 objects; a model "
                             f"file has a few per layer")
            where = f"{group.name.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                refuse(path, f"{where} is an external link to {link.filename!r}: a model "
                             f"file may only hold its own data")
            if isinstance(link, h5py.SoftLink):
                refuse(path, f"{where} is a soft link to {link.path!r}: Keras never writes "
                             f"links, and minicnn does not follow them")
            if not isinstance(link, h5py.HardLink):
                refuse(path, f"{where} is a {type(link).__name__}, not a group or dataset")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                groups.append(obj)
            elif isinstance(obj, h5py.Dataset):
                if obj.is_virtual:
                    refuse(path, f"{where} is a virtual dataset (its data live in other "
                                 f"files): not allowed in a model file")
                if obj.id.get_create_plist().get_external_count():
                    refuse(path, f"{where} keeps its data in external storage (another "
                                 f"file): not allowed in a model file")
            else:
                refuse(path, f"{where} is a {type(obj).__name__}, not a group or dataset")


def h5_attribute(obj, name, path):
    """An HDF5 attribute's value, its size checked before it is read where HDF5 knows
    it (a variable-length string lies in the file's heap: no larger than the file,
    and checked once read). None if absent."""
    if name not in obj.attrs:
        return None
    try:
        size = obj.attrs.get_id(name).get_storage_size()
    except RuntimeError:  # variable length: HDF5 reports no size
        size = 0
    if size > MAX_H5_ATTRIBUTE_BYTES:
        refuse(path, f"attribute {name!r} of {obj.name} holds {size:,} bytes, more than the "
                     f"{MAX_H5_ATTRIBUTE_BYTES:,} a model file's attribute may")
    return obj.attrs[name]


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras's .keras, .weights.h5 and .h5 files need h5py: "
                          "pip install h5py (or minicnn[keras-files])") from None
    return h5py


# ---------------------------------------------------------------------------------
# 2. bounded work
# ---------------------------------------------------------------------------------
def read_member(archive, name, cap, path, what=None):
    """The bytes of zip member ``name``, refused before inflating when its declared size
    exceeds ``cap`` (and read no further than ``cap`` whatever the header claims)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        refuse(path, f"has no {name!r} (its members: {archive.namelist()[:8]})")
    if info.file_size > cap:
        refuse(path, f"{what or name} declares {info.file_size:,} bytes, more than the "
                     f"{cap:,} it may hold")
    with archive.open(info) as member:
        data = member.read(cap + 1)
    if len(data) > cap:
        refuse(path, f"{what or name} inflates past {cap:,} bytes")
    return data


def _depth(value):
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_json(data, path, what):
    """JSON from bytes or text, bounded in size and nesting."""
    if len(data) > MAX_JSON_BYTES:
        refuse(path, f"{what} holds {len(data):,} bytes of JSON, more than the "
                     f"{MAX_JSON_BYTES:,} a model file's may")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelFileError(path, f"{what} is not UTF-8 text ({exc})") from exc
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        refuse(path, f"{what} nests deeper than JSON can be read")
    except ValueError as exc:
        raise ModelFileError(path, f"{what} is not valid JSON ({exc})") from exc
    if _depth(value) > MAX_JSON_DEPTH:
        refuse(path, f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON value")


def available_bytes():
    """Memory a load may use at most: the machine's physical memory, or less where an
    address-space limit leaves less."""
    limit = None
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft not in (resource.RLIM_INFINITY, -1):
            used = _address_space_used()
            limit = min(limit or soft, max(soft - used, 0))
    except (ImportError, OSError, ValueError):
        pass
    return limit


def _address_space_used():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def check_declared_size(path, layers, input_shape, itemsize, copies, already=0):
    """Refuse an architecture whose weights (``copies`` of them: the weights and the
    optimizer's slots) would not fit in memory beside ``already`` parameters made,
    before building it; returns its own count."""
    shape, count = tuple(input_shape), 0
    for layer in layers:
        count += sum(math.prod(s) for s in layer.declared_weight_shapes(shape))
        shape = layer.compute_output_shape(shape)
    check_size(path, already + count, itemsize, copies)
    return count


def check_size(path, count, itemsize, copies):
    """Refuse ``count`` parameters (``copies`` of them) that would not fit in memory."""
    need, have = count * itemsize * copies, available_bytes()
    if have is not None and need > have:
        refuse(path, f"declares a model of {count:,} parameters ({need / 2**30:.1f} GiB with "
                     f"its optimizer state), more than the {have / 2**30:.1f} GiB of memory "
                     f"this process may use")
    return count


class Stored:
    """An array in a file whose shape and dtype are known before its data are read."""

    def __init__(self, shape, dtype, read):
        self.shape, self.dtype, self._read = tuple(shape), np.dtype(dtype), read

    def read(self):
        return self._read()

    @classmethod
    def from_h5(cls, dataset):
        return cls(dataset.shape, dataset.dtype, lambda: np.asarray(dataset[()]))

    @classmethod
    def from_zip(cls, archive, name, path):
        """A ``.npy`` member of a zip (an ``.npz``): its header read, its data not yet."""
        info = archive.getinfo(name)
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                refuse(path, f"{name}: unknown .npy version {version}")
        if dtype.hasobject:
            refuse(path, f"{name} holds Python objects; minicnn never unpickles")
        expected = math.prod(shape) * dtype.itemsize
        if info.file_size > expected + NPY_HEADER_BYTES:
            refuse(path, f"{name} declares {info.file_size:,} bytes for an array of "
                         f"{expected:,}")

        def read():
            with archive.open(info) as member:
                return np.lib.format.read_array(member, allow_pickle=False)
        return cls(shape, dtype, read)


def read_checked(path, stored, what, shape, kinds="f"):
    """The array behind ``stored`` once its shape and dtype kind are the expected ones
    (checked before a byte of it is read), then ``check_values``."""
    if stored.shape != tuple(shape):
        refuse(path, f"{what} has shape {stored.shape}, the model expects {tuple(shape)}")
    if stored.dtype.kind not in kinds:
        refuse(path, f"{what} has dtype {stored.dtype}, the model expects "
                     f"{_kind_names(kinds)} values")
    return check_values(path, stored.read(), what)


def _kind_names(kinds):
    names = {"f": "floating-point", "i": "integer", "u": "unsigned integer", "b": "boolean"}
    return " or ".join(names[k] for k in kinds)


# ---------------------------------------------------------------------------------
# 4. values
# ---------------------------------------------------------------------------------
def check_values(path, value, what, nonnegative=False):
    """``value`` if finite (and non-negative where asked): nothing trains on NaN."""
    value = np.asarray(value)
    if value.dtype.kind == "f" and value.size:
        bad = ~np.isfinite(value)
        if bad.any():
            index = tuple(int(i) for i in np.unravel_index(int(bad.argmax()), value.shape))
            refuse(path, f"{what} holds NaN or Inf ({int(bad.sum())} of {value.size} values, "
                         f"the first at {index})")
        if nonnegative and (value < 0).any():
            refuse(path, f"{what} holds negative values (min {value.min()}); it must be >= 0")
    return value


def check_iterations(path, value):
    """The optimizer's step count: a whole number from 0 up."""
    value = np.asarray(value) if not isinstance(value, numbers.Number) else value
    if isinstance(value, np.ndarray):
        if value.shape not in ((), (1,)) or value.dtype.kind not in "iuf":
            refuse(path, f"the optimizer's step count has shape {value.shape} and dtype "
                         f"{value.dtype}; expected one whole number")
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value != int(value) or not 0 <= value < 2**62:
        refuse(path, f"the optimizer's step count is {value!r}; expected a whole number "
                     f">= 0")
    return int(value)
