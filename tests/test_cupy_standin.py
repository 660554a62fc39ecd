"""The CuPy stand-in (tests/cupy_standin.py): it refuses whatever would leave device
memory or mix host memory into a device operation, allows what CuPy allows, counts
host <-> device copies, enforces a memory limit and launches raw kernels CuPy's way."""
import copy
import gc
import importlib.util
import inspect
import operator
import pickle
import shutil
import sys

import numpy as np
import pytest

import cupy_standin
from cupy_standin import cupy_standin as cupy_standin_fixture  # noqa: F401 (the fixture)

import minicnn as mc


@pytest.fixture
def cp():
    """Always the stand-in (these tests are about it), even where a real CuPy runs."""
    module = cupy_standin.install()
    yield module
    cupy_standin.uninstall()


@pytest.fixture
def a(cp):
    return cp.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))


HOST = np.ones((2, 3), dtype=np.float32)
IMPLICIT = "Implicit conversion to a NumPy array is not allowed"
MIXING = r"numpy\.ndarray \(.*\) \(host memory\) cannot meet a cupy\.ndarray"


# ----------------------------------------------------------------------------------
# what it is
# ----------------------------------------------------------------------------------
def test_installs_as_cupy_and_uninstalls(cp, monkeypatch):
    import cupy
    import cupy.cuda.runtime
    assert cupy is cp and cupy.cuda.runtime is cp.cuda.runtime
    cupy_standin.uninstall()
    assert "cupy" not in sys.modules or sys.modules["cupy"] is not cp
    sentinel = object()
    monkeypatch.setitem(sys.modules, "cupy", sentinel)
    assert cupy_standin.install() is cp and sys.modules["cupy"] is cp
    cupy_standin.uninstall()
    assert sys.modules["cupy"] is sentinel


def test_fixture_gives_the_module_that_import_finds(cupy_standin_fixture):
    import cupy
    assert cupy is cupy_standin_fixture
    assert cupy.cuda.runtime.getDeviceCount() >= 1


def test_array_is_a_cupy_ndarray_and_not_a_numpy_one(cp, a):
    assert type(a).__name__ == "ndarray" and type(a).__module__ == "cupy"
    assert not isinstance(a, np.ndarray)
    assert mc.backend._is_cupy_array(a)
    assert cp.get_array_module(a) is cp and cp.get_array_module(HOST) is np
    assert mc.backend.get_array_module(a) is cp
    with pytest.raises(AttributeError):
        a.anything = 1  # CuPy's ndarray is an extension type


@pytest.mark.parametrize("name", ["ma", "ctypeslib", "f2py", "seterr", "float128", "object_",
                                  "random", "asmatrix"])
def test_names_it_lacks_are_attribute_errors(cp, name):
    # no forwarding to NumPy: a function the stand-in lacks is never quietly a host one
    with pytest.raises(AttributeError):
        getattr(cp, name)


# ----------------------------------------------------------------------------------
# refusals
# ----------------------------------------------------------------------------------
def _into_host_array(x):
    np.zeros((2, 3), np.float32)[...] = x


@pytest.mark.parametrize("convert", [
    np.asarray, np.array, lambda x: np.asarray([x, x]), _into_host_array,
    lambda x: np.testing.assert_allclose(x, HOST)],
    ids=["asarray", "array", "list", "host-setitem", "assert_allclose"])
def test_no_implicit_conversion_to_numpy(a, convert):
    with pytest.raises(TypeError, match=IMPLICIT):
        convert(a)


@pytest.mark.parametrize("call", [
    lambda x: np.add(x, 1), lambda x: np.exp(x), lambda x: np.maximum(x, 0),
    lambda x: np.sum(x), lambda x: np.concatenate([x, x]), lambda x: np.where(x > 1, x, 0),
    lambda x: np.moveaxis(x, 0, 1)],
    ids=["add", "exp", "maximum", "sum", "concatenate", "where", "moveaxis"])
def test_numpy_functions_refuse_device_arrays(a, call):
    # device code must call xp.<name>: NumPy's function would run on the host
    with pytest.raises(TypeError):
        call(a)


@pytest.mark.parametrize("mix", [
    lambda cp, x: x + HOST, lambda cp, x: HOST + x, lambda cp, x: x * HOST,
    lambda cp, x: HOST - x, lambda cp, x: x @ HOST.T, lambda cp, x: HOST < x,
    lambda cp, x: x == HOST, lambda cp, x: x.__iadd__(HOST),
    lambda cp, x: x.__setitem__(Ellipsis, HOST), lambda cp, x: x.__setitem__(0, HOST[0:1]),
    lambda cp, x: cp.maximum(x, HOST), lambda cp, x: cp.where(x > 1, x, HOST),
    lambda cp, x: cp.concatenate([x, HOST]), lambda cp, x: cp.clip(x, HOST, 3),
    lambda cp, x: cp.take_along_axis(x, HOST.astype(np.int64), 1),
    lambda cp, x: cp.sum(HOST), lambda cp, x: cp.zeros_like(HOST), lambda cp, x: cp.pad(HOST, 1),
    lambda cp, x: cp.matmul(x, HOST.T), lambda cp, x: cp.einsum("ij,ij->i", x, HOST)],
    ids=["add", "radd", "mul", "rsub", "matmul", "reflected-lt", "eq", "iadd", "setitem",
         "setitem-row", "maximum", "where", "concatenate", "clip", "take_along_axis", "sum",
         "zeros_like", "pad", "cp.matmul", "einsum"])
def test_no_mixing_with_host_arrays(cp, a, mix):
    with pytest.raises(TypeError, match=MIXING):
        mix(cp, a)


def test_mixing_message_names_both_types(a):
    with pytest.raises(TypeError) as info:
        a + HOST
    assert "numpy.ndarray" in str(info.value) and "cupy.ndarray" in str(info.value)


def test_other_operands_are_refused(cp, a):
    with pytest.raises(TypeError, match="Unsupported type <class 'list'>"):
        a + [1, 2, 3]
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.maximum(a, None)


# ----------------------------------------------------------------------------------
# what is allowed
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("combine", [
    lambda x: x + 1, lambda x: 2.0 * x, lambda x: x - True, lambda x: x / np.float32(2),
    lambda x: np.float32(2) * x, lambda x: np.int32(1) + x, lambda x: np.float64(3) > x,
    lambda x: x ** 2, lambda x: 2 ** x, lambda x: -x, lambda x: abs(x), lambda x: x @ x.T,
    lambda x: x // 2, lambda x: x % 2])
def test_python_and_numpy_scalars_combine_with_device_arrays(a, combine):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = combine(a)
    assert type(out) is type(a)
    expected = combine(host)
    np.testing.assert_array_equal(out.get(), expected)
    assert out.dtype == expected.dtype


def test_in_place_operators_write_into_the_array(cp, a):
    b = a.copy()
    b += 1
    b *= np.float32(2)
    b -= a
    b /= 2
    b **= 1
    np.testing.assert_array_equal(b.get(), (np.arange(6).reshape(2, 3) + 2) / 2)
    with pytest.raises(TypeError):  # NumPy's casting rule: float into an int array
        c = cp.arange(3)
        c += 0.5


def test_numpy_scalars_assign_and_fill(cp, a):
    a[0, 0] = np.float32(7)
    a[1] = cp.zeros(3, np.float32)
    a[:, 2] = 5
    np.testing.assert_array_equal(a.get(), [[7, 1, 5], [0, 0, 5]])
    a.fill(np.float64(2))
    np.testing.assert_array_equal(a.get(), np.full((2, 3), 2))
    with pytest.raises(TypeError, match="host memory"):
        a.fill(HOST)


def test_results_stay_device_arrays_and_0d(cp, a):
    for result in (a.sum(), a.max(), a.mean(), a.argmax(), a[1, 2], cp.sum(a), cp.exp(a[0, 0]),
                   cp.argmin(a)):
        assert type(result) is type(a) and result.ndim == 0
    assert a.sum(axis=0).shape == (3,) and a.sum(axis=1, keepdims=True).shape == (2, 1)
    assert a.sum(dtype=np.float64).dtype == np.float64


def test_indexing(cp, a):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    index = cp.asarray(np.array([1, 0]))
    for key, host_key in [((0, 1), (0, 1)), (slice(1, None), slice(1, None)),
                          ((None, Ellipsis, 1), (None, Ellipsis, 1)), (index, np.array([1, 0])),
                          (a > 2, host > 2), ((index, slice(None, 2)), (np.array([1, 0]),
                                                                     slice(None, 2)))]:
        np.testing.assert_array_equal(a[key].get(), host[host_key])
    np.testing.assert_array_equal(a[np.array([1])].get(), host[[1]])  # as CuPy, via a copy
    a[a > 2] = 0
    assert a.get().max() == 2
    assert len(a) == 2 and [row.shape for row in a] == [(3,), (3,)]
    with pytest.raises(TypeError):
        len(a.sum())


def test_scalar_conversions_only_for_one_value(cp, a):
    assert float(a[1, 2]) == 5.0 and int(a[1, 2]) == 5 and bool(a[0, 1]) is True
    assert f"{a[1, 2]:.1f}" == "5.0"
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a)
    with pytest.raises(TypeError):
        float(a)
    with pytest.raises(TypeError):  # CuPy's ndarray has no __index__ either
        operator.index(cp.asarray(np.int64(2)))


def test_attributes_and_layout(cp, a):
    assert (a.shape, a.dtype, a.ndim, a.size, a.nbytes, a.itemsize) == \
        ((2, 3), np.float32, 2, 6, 24, 4)
    assert a.strides == (12, 4) and a.T.shape == (3, 2)
    assert a.flags.c_contiguous and not a.flags.f_contiguous
    assert a.T.flags.f_contiguous and not a.T.flags.c_contiguous and a.flags["C_CONTIGUOUS"]
    assert isinstance(a.data.ptr, int) and a.data.ptr == a[0:1].data.ptr
    assert a.astype(np.float32, copy=False) is a and a.astype(np.float64).dtype == np.float64
    assert cp.ascontiguousarray(a) is a and cp.ascontiguousarray(a.T).flags.c_contiguous
    assert a.reshape(3, 2).shape == (3, 2) and a.reshape((6,)).shape == (6,)
    assert a.transpose(1, 0).shape == (3, 2) and a.ravel().shape == (6,)
    assert a.copy().data.ptr != a.data.ptr
    with pytest.raises(ValueError, match="Unsupported dtype"):
        cp.asarray(np.array(["x"]))


def test_pickle_and_copies_go_through_the_module(cp, a):
    assert pickle.loads(pickle.dumps(a)).get().tolist() == a.get().tolist()
    assert copy.deepcopy(a).data.ptr != a.data.ptr


# ----------------------------------------------------------------------------------
# module functions agree with NumPy on device data
# ----------------------------------------------------------------------------------
X = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -4.0]], dtype=np.float32)
CASES = {
    "pad": lambda m, x: m.pad(x, ((1, 0), (0, 2)), mode="constant", constant_values=0.5),
    "concatenate": lambda m, x: m.concatenate([x, x], axis=1),
    "stack": lambda m, x: m.stack([x, x], axis=-1),
    "maximum": lambda m, x: m.maximum(x, 0),
    "minimum": lambda m, x: m.minimum(x, x[::-1]),
    "exp": lambda m, x: m.exp(x), "log": lambda m, x: m.log(m.abs(x) + 1),
    "sqrt": lambda m, x: m.sqrt(m.abs(x)), "tanh": lambda m, x: m.tanh(x),
    "logaddexp": lambda m, x: m.logaddexp(0, -x),
    "where": lambda m, x: m.where(x > 0, x, m.zeros_like(x)),
    "where1": lambda m, x: m.where(x > 0)[1],
    "clip": lambda m, x: m.clip(x, -1, 1), "isfinite": lambda m, x: m.isfinite(x / x),
    "isnan": lambda m, x: m.isnan(x / x),
    "take_along_axis": lambda m, x: m.take_along_axis(x, m.argmax(x, axis=1)[:, None], axis=1),
    "broadcast_to": lambda m, x: m.broadcast_to(x[:, None], (2, 4, 3)),
    "moveaxis": lambda m, x: m.moveaxis(x[None], 0, -1),
    "tile": lambda m, x: m.tile(x, (2, 1)), "round": lambda m, x: m.round(x / 3, 2),
    "abs": lambda m, x: m.abs(x), "sign": lambda m, x: m.sign(x),
    "matmul": lambda m, x: m.matmul(x, x.T), "dot": lambda m, x: m.dot(x.T, x),
    "einsum": lambda m, x: m.einsum("ij,kj->ik", x, x),
    "sum": lambda m, x: m.sum(x, axis=0), "mean": lambda m, x: m.mean(x, axis=1, keepdims=True),
    "argmax": lambda m, x: m.argmax(x, axis=0), "argmin": lambda m, x: m.argmin(x),
    "max": lambda m, x: m.max(x, axis=1), "amin": lambda m, x: m.amin(x),
    "all": lambda m, x: m.all(x > -5), "any": lambda m, x: m.any(x > 5, axis=0),
    "zeros": lambda m, x: m.zeros((2, 3), dtype=m.float32),
    "ones": lambda m, x: m.ones(4, dtype=m.int64), "full": lambda m, x: m.full((2,), 3.5),
    "full_like": lambda m, x: m.full_like(x, 2), "ones_like": lambda m, x: m.ones_like(x),
    "empty": lambda m, x: m.empty((3, 1), m.float16).shape,
    "empty_like": lambda m, x: m.empty_like(x).shape,
    "arange": lambda m, x: m.arange(2, 11, 3, dtype=m.int32),
    "reshape": lambda m, x: m.reshape(x, (3, 2)), "transpose": lambda m, x: m.transpose(x),
    "expand_dims": lambda m, x: m.expand_dims(x, 0), "squeeze": lambda m, x: m.squeeze(x[None]),
    "ravel": lambda m, x: m.ravel(x), "astype": lambda m, x: x.astype(m.int32),
    "comparison": lambda m, x: (x >= 0) & (x != 2) | ~(x < 3),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_functions_agree_with_numpy(cp, name):
    with np.errstate(all="ignore"):
        expected = CASES[name](np, X)
        got = CASES[name](cp, cp.asarray(X))
    if isinstance(expected, tuple):  # shapes of uninitialised arrays
        assert got == expected
        return
    assert type(got).__module__ == "cupy"
    np.testing.assert_array_equal(cp.asnumpy(got), expected)
    assert got.dtype == expected.dtype


def test_ufunc_out_writes_into_a_device_array(cp, a):
    assert cp.maximum(a, 2, out=a) is a
    np.testing.assert_array_equal(a.get(), [[2, 2, 2], [3, 4, 5]])
    out = cp.empty(3, dtype=np.float32)
    assert cp.sum(a, axis=0, out=out) is out and out.get().tolist() == [5, 6, 7]
    with pytest.raises(TypeError, match="host memory"):
        cp.exp(a, out=np.empty((2, 3), np.float32))


def test_asarray_of_a_device_array_is_the_array(cp, a):
    assert cp.asarray(a) is a
    assert cp.asarray(a, dtype=np.float64).dtype == np.float64
    assert cp.array(a) is not a and cp.array(a).get().tolist() == a.get().tolist()


# ----------------------------------------------------------------------------------
# counted copies between host and device
# ----------------------------------------------------------------------------------
def test_transfers_are_counted(cp):
    cp.transfers.reset()
    host = np.arange(4, dtype=np.float32)
    x = cp.asarray(host)
    host[0] = 99  # asarray copied: the device array does not see host writes
    y = (x * 2 + cp.exp(x)).sum() + x.max()  # work on the device copies nothing
    assert cp.transfers == {"host_to_device": 1, "device_to_host": 0}
    back = x.get()
    back[1] = 42  # get copied too
    assert back[0] == 0 and float(x[1]) == 1.0
    assert cp.transfers == {"host_to_device": 1, "device_to_host": 2}
    for to_host in (float, int, bool, cp.asnumpy, repr, lambda v: v.item(), lambda v: f"{v}"):
        to_host(y)
    assert cp.transfers == {"host_to_device": 1, "device_to_host": 9}
    assert cp.transfers.log[:2] == [("host_to_device", (4,), "float32"),
                                    ("device_to_host", (4,), "float32")]
    x.set(np.ones(4, np.float32))
    cp.array([1, 2])
    x[np.array([0, 1])]  # CuPy copies a host index array to the device
    assert cp.transfers["host_to_device"] == 4
    cp.transfers.reset()
    assert cp.transfers == {"host_to_device": 0, "device_to_host": 0}
    assert cp.transfers.log == []


def test_asnumpy_of_host_data_is_not_a_transfer(cp):
    cp.transfers.reset()
    assert cp.asnumpy([1, 2]).tolist() == [1, 2]
    assert cp.transfers["device_to_host"] == 0


def test_minicnn_backend_runs_on_the_standin(cp):
    mc.backend.set_backend("cupy")
    try:
        cp.transfers.reset()
        x = mc.backend.to_device(np.ones((2, 2)))
        assert mc.backend.get_array_module(x) is cp
        assert mc.backend.to_host(x).tolist() == [[1, 1], [1, 1]]
        assert cp.transfers == {"host_to_device": 1, "device_to_host": 1}
    finally:
        mc.backend.set_backend(mc.backend.default_backend())


# ----------------------------------------------------------------------------------
# device memory
# ----------------------------------------------------------------------------------
def test_out_of_memory_error_is_cupys(cp):
    err = cp.cuda.memory.OutOfMemoryError(1024, 0)
    assert isinstance(err, MemoryError)
    assert str(err) == "Out of memory allocating 1,024 bytes (allocated so far: 0 bytes)."
    assert str(cp.cuda.memory.OutOfMemoryError(1024, 512, 2048)) == (
        "Out of memory allocating 1,024 bytes (allocated so far: 512 bytes, "
        "limit set to: 2,048 bytes).")


def test_memory_limit(cp):
    gc.collect()  # no garbage of earlier tests is freed while this one counts
    pool = cp.get_default_memory_pool()
    base = pool.used_bytes()
    x = cp.zeros(1000, dtype=np.float32)
    assert pool.used_bytes() == base + 4000
    view = x[10:].reshape(10, 99)  # a view takes no memory
    assert pool.used_bytes() == base + 4000
    pool.set_limit(size=base + 6000)
    assert pool.get_limit() == base + 6000
    with pytest.raises(cp.cuda.memory.OutOfMemoryError, match="limit set to"):
        cp.empty(10**12, dtype=np.float32)  # refused before NumPy tries to allocate it
    with pytest.raises(MemoryError):
        x + 1  # a result array needs 4000 more
    with pytest.raises(MemoryError):
        cp.asarray(np.zeros(1000, np.float32))
    del x, view
    y = cp.ones(1000, dtype=np.float32)  # the freed bytes are available again
    assert pool.used_bytes() == base + y.nbytes
    pool.set_limit(size=0)
    assert pool.get_limit() == 0
    z = cp.empty((1000, 10))
    assert z.nbytes == 80000


def test_memory_limit_is_reset_by_install(cp):
    cp.get_default_memory_pool().set_limit(size=1)
    cupy_standin.install()
    assert cp.get_default_memory_pool().get_limit() == 0
    with pytest.raises(ValueError):
        cp.get_default_memory_pool().set_limit(size=1, fraction=0.5)


# ----------------------------------------------------------------------------------
# cupy.cuda
# ----------------------------------------------------------------------------------
def test_cuda_device_and_streams(cp):
    assert cp.cuda.runtime.getDeviceCount() == 1 and cp.cuda.get_device_id() == 0
    with cp.cuda.Device(0) as device:
        assert device.id == 0
        device.synchronize()
    assert cp.cuda.Device().use().id == 0
    cp.cuda.Stream.null.synchronize()
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="invalid device ordinal"):
        cp.cuda.Device(1).use()
    free, total = cp.cuda.runtime.memGetInfo()
    assert 0 < free <= total


# ----------------------------------------------------------------------------------
# raw kernels
# ----------------------------------------------------------------------------------
SCALE = """
template<typename T>
__global__ void scale(T* x, long long n, T f)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x)
        x[i] *= f;
}
"""


class FakeEmulation:
    """Records launches; "runs" scale by multiplying the first array in place."""
    built = []

    def __init__(self, code, name_expressions):
        self.names = list(name_expressions)
        self.launches = []
        FakeEmulation.built.append(self)

    def launch(self, name, grid, block, args):
        assert name in self.names
        self.launches.append((name, grid, block, args))
        args[0][...] *= args[2]


@pytest.fixture
def fake_emulation(monkeypatch):
    from minicnn.kernels.cuda import emulation
    FakeEmulation.built = []
    monkeypatch.setattr(emulation, "Module", FakeEmulation)
    return FakeEmulation


@pytest.fixture
def scale(cp, fake_emulation):
    module = cp.RawModule(code=SCALE, options=("-std=c++14",),
                          name_expressions=["scale<float>", "scale<double>"])
    return module.get_function("scale<float>")


def test_raw_kernel_gets_the_device_buffer_and_cupys_arguments(cp, scale, fake_emulation):
    x = cp.arange(5, dtype=np.float32)
    scale((2,), (128,), (x, np.int64(5), np.float32(3)))
    np.testing.assert_array_equal(x.get(), [0, 3, 6, 9, 12])  # written in place
    (emulated,) = fake_emulation.built
    name, grid, block, args = emulated.launches[0]
    assert (name, grid, block) == ("scale<float>", (2, 1, 1), (128, 1, 1))
    assert type(args[0]) is np.ndarray and type(args[1]) is np.int64
    scale((1, 1), (32, 2, 1), [x, np.int64(5), np.float32(1)], shared_mem=0)


@pytest.mark.parametrize("grid, block, error", [
    (2, (128,), TypeError), ((2,), 128, TypeError), ((1, 1, 1, 1), (1,), ValueError),
    ((1,), (2048,), "CUDA_ERROR_INVALID_VALUE"), ((1,), (32, 32, 2), "CUDA_ERROR_INVALID_VALUE"),
    ((1, 70000), (1,), "CUDA_ERROR_INVALID_VALUE")])
def test_raw_kernel_launch_shape_is_checked(cp, scale, grid, block, error):
    x = cp.zeros(4, np.float32)
    if isinstance(error, str):
        with pytest.raises(cp.cuda.driver.CUDADriverError, match=error):
            scale(grid, block, (x, np.int64(4), np.float32(1)))
    else:
        with pytest.raises(error):
            scale(grid, block, (x, np.int64(4), np.float32(1)))


@pytest.mark.parametrize("args, message", [
    (lambda cp: (np.zeros(4, np.float32), np.int64(4), np.float32(1)), "host memory"),
    (lambda cp: (cp.zeros((4, 2), np.float32)[:, 0], np.int64(4), np.float32(1)),
     "not C-contiguous"),
    (lambda cp: (cp.zeros(4, np.float32), 4, np.float32(1)), "Python int"),
    (lambda cp: (cp.zeros(4, np.float32), np.int64(4), 1.0), "Python float"),
    (lambda cp: (cp.zeros(4, np.float32), np.int64(4), [1.0]), "Unsupported type")])
def test_raw_kernel_refuses_wrong_arguments(cp, scale, fake_emulation, args, message):
    with pytest.raises(TypeError, match=message):
        scale((1,), (32,), args(cp))
    assert not fake_emulation.built[0].launches


def test_raw_module_follows_cupys_rules(cp, fake_emulation):
    with pytest.raises(TypeError):
        cp.RawModule(SCALE)  # keyword-only
    with pytest.raises(TypeError, match="tuple"):
        cp.RawModule(code=SCALE, options=["-O2"])
    module = cp.RawModule(code=SCALE, name_expressions=("scale<float>",))
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="NOT_FOUND"):
        module.get_function("scale<int>")
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="NOT_FOUND"):
        cp.RawModule(code=SCALE).get_function("scale")  # mangled: no extern "C"
    plain = cp.RawModule(code='extern "C" __global__ void f(float* x) {}').get_function("f")
    assert fake_emulation.built[-1].names == ["f"]
    with pytest.raises(NotImplementedError):
        plain((1,), (1,), (cp.zeros(1, np.float32),), shared_mem=64)


@pytest.mark.skipif(shutil.which("g++") is None, reason="the CUDA emulation needs g++")
def test_raw_kernel_runs_through_the_cuda_emulation(cp):
    module = cp.RawModule(code=SCALE, name_expressions=("scale<float>", "scale<double>"))
    x = cp.arange(1000, dtype=np.float32)
    module.get_function("scale<float>")((3,), (64,), (x, np.int64(1000), np.float32(0.5)))
    np.testing.assert_array_equal(x.get(), np.arange(1000, dtype=np.float32) * 0.5)
    y = cp.ones(10, dtype=np.float64)[2:]  # a contiguous view: writes land in y
    module.get_function("scale<double>")((1,), (4,), (y, np.int64(8), np.float64(3)))
    assert y.get().tolist() == [3.0] * 8
    with pytest.raises(TypeError):  # long long n needs numpy.int64
        module.get_function("scale<float>")((1,), (4,), (x, np.int32(1000), np.float32(1)))


# ----------------------------------------------------------------------------------
# against the real CuPy, where it is installed
# ----------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("cupy") is None,
                    reason="CuPy is not installed: the stand-in's names cannot be checked "
                           "against it")
def test_every_name_exists_in_real_cupy():
    assert not cupy_standin.is_standin(sys.modules.get("cupy"))
    import cupy as real
    standin = cupy_standin._MODULE
    missing = []
    for path in ("", ".cuda", ".cuda.runtime", ".cuda.memory", ".cuda.device", ".cuda.stream",
                 ".cuda.driver"):
        ours, theirs = standin, real
        for part in filter(None, path.split(".")):
            ours, theirs = getattr(ours, part), getattr(theirs, part)
        for name in vars(ours):
            if not name.startswith("_") and name not in cupy_standin.STANDIN_EXTRAS \
                    and not hasattr(theirs, name):
                missing.append(f"cupy{path}.{name}")
    for name in vars(cupy_standin.ndarray):
        if (not name.startswith("_") or name.startswith("__")) and name not in (
                "__slots__", "__dict__", "__weakref__") and not hasattr(real.ndarray, name):
            missing.append(f"cupy.ndarray.{name}")
    assert not missing
    different = []
    for name, ours in vars(standin).items():
        try:
            theirs = inspect.signature(getattr(real, name))
        except (AttributeError, TypeError, ValueError):
            continue  # real CuPy's Cython functions have no signature to compare
        if callable(ours) and not isinstance(ours, type):
            mine = inspect.signature(ours)
            if [(p.name, p.kind, p.default) for p in mine.parameters.values()] != \
                    [(p.name, p.kind, p.default) for p in theirs.parameters.values()]:
                different.append(f"cupy.{name}{mine} != {theirs}")
    assert not different
