"""The cupy backend, end to end: every layer, the Keras fixtures, training, the
optimizers, saving and loading, switching backends, and its errors.

Each test runs twice: on the strict stand-in for CuPy (tests/cupy_standin.py: arrays
that refuse any implicit trip to the host or any mixing with NumPy arrays, and CUDA
kernels run by the CPU emulation), and, marked ``gpu``, on real CuPy where a CUDA
device is present. The stand-in proves that the device path is complete -- no NumPy
call and no host copy hides in it -- and computes the same numbers; only the GPU run
proves speed, memory and the absence of races on real hardware.
"""
import importlib.util
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import minicnn as mc
from minicnn import ops
from minicnn.backend import to_host
from minicnn.kernels.cuda import emulation
from minicnn.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)

import cupy_standin
from test_backends import pool_input, window_configs
from reference import cases
from reference.compare import keras_summary  # noqa: F401  (the session fixture)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from lenet5 import lenet5  # noqa: E402

def _real_gpu():
    return importlib.util.find_spec("cupy") is not None and "cupy" in mc.backend.available()


@pytest.fixture(params=["standin", pytest.param("gpu", marks=pytest.mark.gpu)])
def device(request):
    """The CuPy module the backend computes with, the backend set to ``cupy``."""
    if request.param == "gpu":
        if not _real_gpu():
            pytest.skip("no CUDA device with CuPy on this machine")
        import cupy
        module = cupy
    else:
        if emulation.compiler() is None:
            pytest.skip("no C++ compiler (g++) for the CPU emulation of the CUDA kernels")
        module = cupy_standin.install()
    mc.backend.set_backend("cupy")
    try:
        yield module
    finally:
        mc.backend.set_backend(mc.backend.default_backend())
        if request.param == "standin":
            cupy_standin.uninstall()




def _examples(count):
    """hypothesis settings; the function-scoped ``device`` fixture is fine to share
    between examples: it holds no per-example state."""
    return settings(deadline=None, max_examples=count,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_layer(backend, make_layer, x, training=True, seed=1):
    """Forward and backward of a fresh layer on ``backend``, as host arrays. Weights
    come from the same seeded initializer on every backend."""
    previous = mc.backend.get_backend()
    mc.backend.set_backend(backend)
    try:
        mc.utils.set_random_seed(7)
        layer = make_layer()
        y = layer.forward(x, training=training)
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
        dx = layer.backward(dy)
        return [to_host(y), to_host(dx), *layer.get_gradients(), *layer.get_weights()]
    finally:
        mc.backend.set_backend(previous)


def assert_like_numpy(make_layer, x, training=True, rtol=1e-12, atol=1e-12):
    expected = run_layer("numpy", make_layer, x, training)
    actual = run_layer("cupy", make_layer, x, training)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert isinstance(a, np.ndarray) and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------
# every layer computes what the numpy backend computes
# ---------------------------------------------------------------------------------
@_examples(25)
@given(config=window_configs(["valid", "same", "full"]), filters=st.integers(1, 3),
       activation=st.sampled_from(["linear", "relu", "tanh"]), use_bias=st.booleans())
def test_conv2d_on_cupy(device, config, filters, activation, use_bias):
    padding, k, s, data_format, shape, seed = config
    mc.backend.set_floatx("float64")
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_like_numpy(lambda: Conv2D(filters, k, s, padding, activation=activation,
                                     use_bias=use_bias, data_format=data_format), x)


@_examples(25)
@given(config=window_configs(["valid", "same"]),
       cls=st.sampled_from([MaxPooling2D, MinPooling2D, AveragePooling2D]),
       values=st.sampled_from(["normal", "ties", "nan"]))
def test_pooling_on_cupy(device, config, cls, values):
    padding, k, s, data_format, shape, seed = config
    mc.backend.set_floatx("float64")
    x = pool_input(shape, seed, values, cls)
    assert_like_numpy(lambda: cls(k, s, padding, data_format=data_format), x)


@pytest.mark.parametrize("make_layer, shape, training", [
    (lambda: Dense(5, activation="softmax"), (4, 7), True),
    (lambda: Dense(3, activation="sigmoid"), (2, 3, 6), True),
    (lambda: Dense(4, activation="relu", use_bias=False), (5, 6), True),
    (lambda: Flatten(), (2, 3, 4, 5), True),
    (lambda: Flatten(data_format="channels_first"), (2, 3, 4, 5), True),
    (lambda: Activation("softmax"), (3, 6), True),
    (lambda: Activation("tanh"), (3, 2, 6), True),
    (lambda: Dropout(0.3, seed=1), (4, 6), True),
    (lambda: BatchNormalization(), (6, 5), True),
    (lambda: BatchNormalization(), (3, 4, 4, 2), True),
    (lambda: BatchNormalization(axis=1), (3, 2, 4, 4), True),
    (lambda: BatchNormalization(), (3, 4, 4, 2), False),
], ids=["dense-softmax", "dense-rank3", "dense-relu-nobias", "flatten", "flatten-cf",
        "softmax", "tanh", "dropout", "bn-dense", "bn-conv", "bn-cf", "bn-inference"])
def test_other_layers_on_cupy(device, make_layer, shape, training):
    mc.backend.set_floatx("float64")
    x = np.random.default_rng(3).standard_normal(shape)
    assert_like_numpy(make_layer, x, training)


@pytest.mark.parametrize("make_layer, shape", [
    (lambda: Conv2D(6, 5, padding="same", activation="tanh"), (4, 12, 12, 1)),
    (lambda: Conv2D(5, 3, strides=2, activation="relu", data_format="channels_first"),
     (3, 2, 9, 9)),
    (lambda: Dense(7, activation="tanh"), (5, 11)),
    (lambda: MaxPooling2D(3, 2, padding="same"), (2, 7, 7, 3)),
    (lambda: AveragePooling2D(2), (2, 6, 6, 3)),
])
def test_float32_layers_on_cupy(device, make_layer, shape):
    """float32 takes the CUDA epilogue (tanhf: a few ulp from NumPy's tanh)."""
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    assert_like_numpy(make_layer, x, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("budget", [1, 3000])
def test_im2col_in_chunks_on_cupy(device, budget):
    mc.backend.set_floatx("float64")
    x = np.random.default_rng(5).standard_normal((5, 9, 8, 3))
    make = lambda: Conv2D(4, (3, 2), strides=(2, 1), padding="same")  # noqa: E731
    expected = run_layer("numpy", make, x)
    mc.backend.set_im2col_budget(budget)
    actual = run_layer("cupy", make, x)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_device_im2col_budget_has_its_own_default(device):
    mc.backend.set_im2col_budget(None)
    on_device = device.zeros((2, 2), dtype=np.float32)
    assert mc.backend.im2col_budget(on_device) == mc.backend.DEFAULT_DEVICE_IM2COL_BUDGET
    assert mc.backend.im2col_budget(np.zeros(2)) == mc.backend.DEFAULT_IM2COL_BUDGET
    mc.backend.set_im2col_budget(4096)
    assert mc.backend.im2col_budget(on_device) == 4096


# ---------------------------------------------------------------------------------
# Keras's numbers, on the device
# ---------------------------------------------------------------------------------
FIXTURES = sorted(cases.DATA_DIR.glob("*.npz"))


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_keras_fixture_on_cupy(device, path, keras_summary):  # noqa: F811
    case, data, meta = cases.load_fixture(path)
    source = "reference:cupy" if device.__name__ == "cupy" and _real_gpu() else \
        "reference:cupy-standin"
    cases.check_case(case, data, keras_summary.checker(source, case), meta)


# ---------------------------------------------------------------------------------
# training: numbers, and what crosses between host and device
# ---------------------------------------------------------------------------------
def _fashion_batch(n):
    (x, y), _ = mc.datasets.load_fashion_mnist()
    return (x[:n, :, :, None] / np.float32(255)).astype(np.float32), y[:n].astype(np.int64)


def _trained_lenet(backend, x, y, epochs=1):
    mc.backend.set_backend(backend)
    mc.backend.clear_session()
    mc.utils.set_random_seed(0)
    model = lenet5()
    model.compile(optimizer=mc.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, seed=0)
    return model, history


def test_lenet5_fit_on_cupy_equals_numpy(device):
    x, y = _fashion_batch(96)
    reference, ref_history = _trained_lenet("numpy", x, y)
    model, history = _trained_lenet("cupy", x, y)
    assert all(type(w).__module__.split(".")[0] == "cupy" for w in model.trainable_weights)
    for a, e in zip(model.get_weights(), reference.get_weights()):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(history.history["loss"], ref_history.history["loss"], rtol=1e-5)
    p = model.predict(x[:40], batch_size=16)
    assert isinstance(p, np.ndarray) and p.shape == (40, 10)
    np.testing.assert_allclose(p, reference.predict(x[:40]), rtol=1e-4, atol=1e-6)
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(
        reference.evaluate(x, y, verbose=0)[1])


def test_a_training_step_moves_only_the_batch_to_the_device(device):
    """Host to device: the images and the labels of the batch, nothing else; device to
    host: only the two numbers of the log (the loss and the accuracy), in one copy: the
    labels are checked on the host before they move."""
    if not hasattr(device, "transfers"):
        pytest.skip("transfers are counted by the stand-in only")
    x, y = _fashion_batch(64)
    mc.utils.set_random_seed(0)
    model = lenet5()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.train_on_batch(x[:32], y[:32])          # builds the optimizer's slots
    device.transfers.reset()
    model.train_on_batch(x[32:], y[32:])
    to_device = [entry for entry in device.transfers.log if entry[0] == "host_to_device"]
    to_host = [entry for entry in device.transfers.log if entry[0] == "device_to_host"]
    assert sorted(shape for _, shape, _ in to_device) == [(32,), (32, 28, 28, 1)]
    assert [shape for _, shape, _ in to_host] == [(2,)]  # the loss and the accuracy, together

    def moved():
        log = [(direction, shape) for direction, shape, _ in device.transfers.log]
        device.transfers.reset()
        return log
    moved()
    model.predict(x[:40], batch_size=16)
    assert moved() == [("host_to_device", (16, 28, 28, 1)), ("device_to_host", (16, 10)),
                       ("host_to_device", (16, 28, 28, 1)), ("device_to_host", (16, 10)),
                       ("host_to_device", (8, 28, 28, 1)), ("device_to_host", (8, 10))]
    model.evaluate(x[:40], y[:40], batch_size=32)
    assert sorted(moved()) == sorted([("host_to_device", (32, 28, 28, 1)),
                                      ("host_to_device", (32,)),
                                      ("host_to_device", (8, 28, 28, 1)),
                                      ("host_to_device", (8,))] + [("device_to_host", (2,))] * 2)


# ---------------------------------------------------------------------------------
# optimizers
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make_optimizer", [
    lambda: mc.optimizers.SGD(0.1),
    lambda: mc.optimizers.SGD(0.05, momentum=0.9),
    lambda: mc.optimizers.SGD(0.05, momentum=0.8, nesterov=True),
    lambda: mc.optimizers.Adam(3e-3),
], ids=["sgd", "momentum", "nesterov", "adam"])
def test_optimizer_steps_on_cupy_are_numpy_s(device, make_optimizer, dtype):
    """The same update, operation by operation (Adam in one CUDA pass compiled without
    fused multiply-adds): the same bits as on the CPU."""
    mc.backend.set_floatx(dtype)
    rng = np.random.default_rng(2)
    shapes = [(3, 3, 2, 4), (4,), (17, 5)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    steps = [[(rng.standard_normal(s) * 10.0 ** rng.integers(-6, 1)).astype(dtype)
              for s in shapes] for _ in range(3)]
    results = {}
    for backend in ("numpy", "cupy"):
        mc.backend.set_backend(backend)
        weights = [mc.backend.to_device(w.copy()) for w in start]
        opt = make_optimizer()
        for grads in steps:
            opt.apply([mc.backend.to_device(g) for g in grads], weights)
        state = opt.get_state()
        results[backend] = [to_host(w) for w in weights] + \
            [a for slot in opt.slot_names for a in state[slot]]
    for a, e in zip(results["cupy"], results["numpy"]):
        np.testing.assert_array_equal(a, e)


# ---------------------------------------------------------------------------------
# saving, loading and switching between host and device
# ---------------------------------------------------------------------------------
def test_saved_on_the_device_loads_on_the_cpu_and_back(device, tmp_path):
    x, y = _fashion_batch(64)
    model, _ = _trained_lenet("cupy", x, y)
    expected = model.predict(x[:8])
    model.save(tmp_path / "gpu.npz")
    mc.backend.set_backend("numpy")
    on_cpu = mc.models.load_model(tmp_path / "gpu.npz")
    assert all(isinstance(w, np.ndarray) for w in on_cpu.trainable_weights)
    np.testing.assert_allclose(on_cpu.predict(x[:8]), expected, rtol=1e-5, atol=1e-6)
    on_cpu.fit(x, y, batch_size=32, epochs=1, verbose=0, seed=1)   # resumes, optimizer included
    on_cpu.save(tmp_path / "cpu.npz")
    mc.backend.set_backend("cupy")
    back = mc.models.load_model(tmp_path / "cpu.npz")
    assert all(type(w).__module__.split(".")[0] == "cupy" for w in back.trainable_weights)
    np.testing.assert_allclose(back.predict(x[:8]), on_cpu.predict(x[:8]), rtol=1e-5, atol=1e-6)
    for a, e in zip(back.optimizer.get_state()["m"], on_cpu.optimizer.get_state()["m"]):
        np.testing.assert_array_equal(a, e)


def test_switching_backend_moves_weights_and_optimizer_slots(device):
    """numpy -> cupy -> numpy between steps trains exactly like numpy throughout."""
    x, y = _fashion_batch(96)

    def train(schedule):
        mc.backend.set_backend(schedule[0])
        mc.backend.clear_session()
        mc.utils.set_random_seed(0)
        model = mc.Sequential([Conv2D(4, 3, activation="relu", input_shape=(28, 28, 1)),
                               MaxPooling2D(2), Flatten(), Dense(10, activation="softmax")])
        model.compile(mc.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
        for step, backend in enumerate(schedule):
            mc.backend.set_backend(backend)
            model.train_on_batch(x[32 * step:32 * step + 32], y[32 * step:32 * step + 32])
            on_device = type(model.layers[0].weights[0]).__module__.split(".")[0] == "cupy"
            assert on_device == (backend == "cupy")
        return model.get_weights()

    mc.backend.set_floatx("float64")
    for a, e in zip(train(["numpy", "cupy", "numpy"]), train(["numpy", "numpy", "numpy"])):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_backward_after_a_backend_switch_is_a_clear_error(device):
    layer = Dense(3)
    layer.forward(np.ones((2, 4), np.float32), training=True)
    mc.backend.set_backend("numpy")
    with pytest.raises(RuntimeError, match=r"Dense 'dense.*': the backend changed to 'numpy' "
                                           r"between forward\(\) and backward\(\)"):
        layer.backward(np.ones((2, 3), np.float32))


# ---------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------
def test_out_of_device_memory_names_the_layer_the_batch_and_the_remedies(device):
    if not hasattr(device, "transfers"):
        pytest.skip("the stand-in simulates a full device; a real one is not filled here")
    model = mc.Sequential([Conv2D(8, 5, padding="same", input_shape=(28, 28, 1)), Flatten(),
                           Dense(10, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _fashion_batch(64)
    pool = device.get_default_memory_pool()
    # room for a batch and the layers' outputs, not for the 5 MB im2col matrix
    pool.set_limit(size=pool.used_bytes() + 4 * 2**20)
    try:
        with pytest.raises(MemoryError, match=r"Conv2D 'conv2d': the GPU ran out of memory in "
                                              r"the forward pass on a batch of 64 .*smaller "
                                              r"batch_size.*set_im2col_budget") as caught:
            model.train_on_batch(x, y)
        # not chained to CuPy's error: its traceback would hold the failed pass's arrays
        assert caught.value.__context__ is None and caught.value.__cause__ is None
        mc.backend.set_im2col_budget(256 * 1024)  # the remedy the message names
        model.train_on_batch(x, y)
    finally:
        pool.set_limit(size=0)


def test_host_and_device_arrays_mixed_in_an_op_say_which_is_which(device):
    x = device.asarray(np.ones((1, 5, 5, 2), np.float32))
    w = np.ones((3, 3, 2, 4), np.float32)
    with pytest.raises(TypeError, match=r"both NumPy \(host\) and CuPy \(device\) arrays.*"
                                        r"argument 1 \(1, 5, 5, 2\) on the device \(CuPy\), "
                                        r"argument 2 \(3, 3, 2, 4\) on the host \(NumPy\)"):
        ops.conv2d_forward(x, w)


def test_a_gpu_the_kernels_cannot_compile_for_is_refused_when_chosen(device, monkeypatch):
    from minicnn.kernels import cuda

    def fails():
        raise RuntimeError("nvrtc: error: invalid value for --gpu-architecture (-arch)")
    mc.backend.set_backend("numpy")
    mc.backend._kernels_problem.cache_clear()
    monkeypatch.setattr(cuda, "compile_all", fails)
    try:
        with pytest.raises(RuntimeError, match=r"set_backend\('cupy'\): CuPy cannot compile "
                                               r"minicnn's CUDA kernels for this GPU .*"
                                               r"gpu-architecture.*minicnn\[cuda1"):
            mc.backend.set_backend("cupy")
        assert "cupy" not in mc.backend.available()
    finally:
        mc.backend._kernels_problem.cache_clear()


def test_cupy_is_listed_as_available(device):
    assert "cupy" in mc.backend.available()
    assert mc.backend.get_backend() == "cupy"


@pytest.mark.parametrize("facts, extra", [
    (((13, 0), (9, 0)), "cuda13"),     # H100/H200 under a CUDA 13 driver
    (((13, 0), (7, 0)), "cuda12"),     # V100: CUDA 13 cannot compile for it
    (((13, 1), None), "cuda13"),
    (((12, 8), (8, 0)), "cuda12"),
])
def test_install_hint_follows_the_driver_and_the_gpu(monkeypatch, facts, extra):
    monkeypatch.setattr(mc.backend, "_driver_facts", lambda: facts)
    assert f"pip install 'minicnn[{extra}]'" in mc.backend.cupy_install_hint()


def test_a_rocm_cupy_is_refused(monkeypatch):
    class RocmCupy:
        class ndarray:
            pass

        class cuda:
            class runtime:
                is_hip = True

                @staticmethod
                def getDeviceCount():
                    return 1
    monkeypatch.setitem(sys.modules, "cupy", RocmCupy)
    with pytest.raises(RuntimeError, match=r"built for AMD GPUs \(ROCm\)"):
        mc.backend.set_backend("cupy")
