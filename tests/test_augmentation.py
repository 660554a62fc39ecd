"""The augmentation layers (RandomFlip, RandomTranslation, RandomRotation, RandomZoom,
RandomCrop, RandomContrast, RandomBrightness) and their ops.

Keras draws its transforms from its own generator, so no stored fixture can hold
its output for a random draw; instead the live checks here give both libraries a
one-value factor range (e.g. ``RandomRotation(factor=(0.1, 0.1))``: exactly 36
degrees), so the transform is fixed, and compare pixels. Tolerances (float32,
values in [0, 1]): nearest interpolation reads the same pixels (exact); bilinear
within 3e-6 (the four-neighbour sums agree within 1-2 ulps, but XLA's float32 cos
and sin can differ from NumPy's by an ulp, which moves a rotated source point by
up to ~5e-7 pixel); the resize of RandomCrop and contrast within 1e-6 (the mean is
summed in another order). RandomFlip is checked by its law: every image unchanged or flipped as the
mode allows, both happening.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.gradcheck import check_layer
from minicnn.layers import (Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input,
                            RandomBrightness, RandomContrast, RandomCrop, RandomFlip,
                            RandomRotation, RandomTranslation, RandomZoom)
from minicnn.models import Sequential, load_model
from minicnn.ops import augment as A
from cupy_standin import cupy_standin  # noqa: F401 (the fixture)

# checked against live Keras below instead of by a stored fixture
# (tests/test_keras_reference.py reads this list)
LIVE_CHECKED = ("RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom",
                "RandomCrop", "RandomContrast", "RandomBrightness")
AFFINE_CASES = [
    ("RandomTranslation", {"height_factor": (0.1, 0.1), "width_factor": (-0.1, -0.1)}),
    ("RandomTranslation", {"height_factor": (-0.37, -0.37), "width_factor": (0.52, 0.52)}),
    ("RandomRotation", {"factor": (0.1, 0.1)}),
    ("RandomRotation", {"factor": (-0.3, -0.3)}),
    ("RandomZoom", {"height_factor": (-0.2, -0.2)}),
    ("RandomZoom", {"height_factor": (0.3, 0.3), "width_factor": (-0.25, -0.25)}),
]
BACKENDS = [b for b in ("numpy", "numba") if b in mc.backend.available()]


def images(shape=(3, 13, 11, 2), seed=0, scale=1.0):
    return (np.random.default_rng(seed).random(shape) * scale).astype(np.float32)


def every_layer(seed=3):
    return [RandomFlip(seed=seed), RandomTranslation(0.2, 0.3, seed=seed),
            RandomRotation(0.2, seed=seed), RandomZoom(0.2, seed=seed),
            RandomCrop(5, 4, seed=seed), RandomContrast(0.5, value_range=(0, 1), seed=seed),
            RandomBrightness(0.2, value_range=(0, 1), seed=seed)]


# ---------------------------------------------------------------------------------
# pixels against live Keras
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("name,args", AFFINE_CASES, ids=lambda v: str(v))
def test_affine_layers_match_keras(keras, name, args, fill_mode, interpolation, backend):
    mc.backend.set_backend(backend)
    x = images()
    kwargs = dict(args, fill_mode=fill_mode, interpolation=interpolation, fill_value=0.5)
    expected = np.asarray(getattr(keras.layers, name)(**kwargs)(x, training=True))
    got = getattr(mc.layers, name)(**kwargs).forward(x, training=True)
    assert got.dtype == np.float32
    if interpolation == "nearest":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=3e-6)


@pytest.mark.parametrize("name,args", AFFINE_CASES[::2], ids=lambda v: str(v))
def test_affine_layers_match_keras_channels_first(keras, name, args):
    x = images((2, 3, 9, 12))
    kwargs = dict(args, fill_mode="constant", data_format="channels_first")
    expected = np.asarray(getattr(keras.layers, name)(**kwargs)(x, training=True))
    got = getattr(mc.layers, name)(**kwargs).forward(x, training=True)
    np.testing.assert_allclose(got, expected, rtol=0, atol=3e-6)


@pytest.mark.parametrize("factor,value_range,scale", [
    ((-0.3, 0.3), (0, 1), 1.0),       # contrast factor exactly 1.3, clipped at 0 and 1
    ((-0.6, 0.6), (0, 255), 255.0),
    ((-0.45, 0.45), (0.2, 0.8), 1.0),  # factor exactly 1.45
])
def test_contrast_matches_keras(keras, factor, value_range, scale):
    x = images(scale=scale)
    expected = np.asarray(keras.layers.RandomContrast(factor, value_range)(x, training=True))
    got = RandomContrast(factor, value_range).forward(x, training=True)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * scale)
    assert not np.allclose(got, x)


@pytest.mark.parametrize("factor,value_range,scale", [
    ((0.2, 0.2), (0, 1), 1.0), ((-0.35, -0.35), (0, 255), 255.0),
    ((0.1, 0.1), (1, -1), 1.0)])       # value_range sorted, as Keras sorts it
def test_brightness_matches_keras(keras, factor, value_range, scale):
    x = images(scale=scale)
    expected = np.asarray(keras.layers.RandomBrightness(factor, value_range)(x, training=True))
    got = RandomBrightness(factor, value_range).forward(x, training=True)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("shape,target", [((2, 8, 9, 3), (10, 12)),   # resized up
                                          ((2, 28, 28, 1), (28, 20)),  # centre crop
                                          ((2, 5, 30, 2), (6, 7))])     # crop + resize
def test_crop_of_small_inputs_matches_keras(keras, shape, target):
    x = images(shape)
    expected = np.asarray(keras.layers.RandomCrop(*target)(x, training=True))
    got = RandomCrop(*target).forward(x, training=True)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_random_crop_follows_keras_shapes_in_training_and_inference(keras):
    x = images((4, 13, 11, 2))
    for training in (True, False):  # Keras 3 leaves the input whole at inference
        expected = np.asarray(keras.layers.RandomCrop(6, 5)(x, training=training))
        got = RandomCrop(6, 5, seed=1).forward(x, training=training)
        assert got.shape == expected.shape
    got = RandomCrop(6, 5, seed=1).forward(x, training=True)
    windows = [x[:, i:i + 6, j:j + 5] for i in range(8) for j in range(7)]
    assert any(np.array_equal(got, w) for w in windows)


@pytest.mark.parametrize("name", LIVE_CHECKED)
def test_config_keys_and_defaults_are_keras(keras, name):
    required = {"RandomTranslation": (0.1, 0.2), "RandomRotation": (0.1,),
                "RandomZoom": (0.1,), "RandomCrop": (5, 6), "RandomContrast": (0.2,),
                "RandomBrightness": (0.2,)}.get(name, ())
    theirs = getattr(keras.layers, name)(*required).get_config()
    ours = getattr(mc.layers, name)(*required).get_config()
    assert set(theirs) - {"trainable", "dtype"} == set(ours)
    for key in set(ours) - {"name", "seed"}:  # Keras's RandomCrop makes up a seed
        assert ours[key] == theirs[key], key


def _plain(value):
    return tuple(value) if isinstance(value, list) else value


def test_keras_and_minicnn_open_each_others_archives(keras, tmp_path):
    mini = Sequential([Input((12, 12, 1))] + every_layer()[:4] + [
        RandomCrop(10, 10, seed=2), RandomContrast(0.3, value_range=(0, 1)),
        RandomBrightness(0.1, value_range=[0, 1]), GlobalAveragePooling2D(), Dense(3)])
    mini.save(str(tmp_path / "m.keras"))
    km = keras.saving.load_model(str(tmp_path / "m.keras"))
    assert [type(la).__name__ for la in km.layers] == [type(la).__name__ for la in mini.layers]
    for ours, theirs in zip(mini.layers[:7], km.layers):
        config = theirs.get_config()
        assert all(_plain(config[k]) == _plain(v) or k in ("name", "seed")
                   for k, v in ours.get_config().items()), type(ours).__name__
    km.save(str(tmp_path / "k.keras"))
    again = load_model(str(tmp_path / "k.keras"))
    assert [la.get_config() for la in again.layers][:3] == \
        [la.get_config() for la in mini.layers][:3]


# ---------------------------------------------------------------------------------
# laws: shapes, inference, seeds, flips
# ---------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(6, 12), w=st.integers(5, 12),
       c=st.integers(1, 3), which=st.integers(0, 6), seed=st.integers(0, 2**16))
def test_shape_dtype_and_inference_identity(n, h, w, c, which, seed):
    x = images((n, h, w, c), seed)
    layer = every_layer(seed)[which]
    y = layer.forward(x, training=True)
    expected = layer.compute_output_shape((h, w, c))
    assert y.shape == (n,) + expected and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    assert layer.backward(np.ones_like(y)).shape == x.shape
    same = layer.forward(x, training=False)
    np.testing.assert_array_equal(same, x)
    np.testing.assert_array_equal(layer.backward(x), x)


def _two_batches(layers, x):
    return [[la.forward(x, training=True) for _ in range(2)] for la in layers]


def test_seeded_layers_repeat_their_sequence_whatever_the_global_seed():
    x = images((8, 10, 9, 2))
    runs = []
    for global_seed in (7, 8):
        mc.utils.set_random_seed(global_seed)
        runs.append(_two_batches(every_layer(11), x))
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first[0], second[0])
        np.testing.assert_array_equal(first[1], second[1])
        assert not np.array_equal(first[0], first[1])  # a new draw per batch
    a, b = RandomRotation(0.3, seed=1), RandomRotation(0.3, seed=2)
    assert not np.array_equal(a.forward(x, training=True), b.forward(x, training=True))


def test_unseeded_layers_draw_from_the_global_generator():
    x = images((8, 10, 9, 2))
    runs = []
    for global_seed in (7, 7, 8):
        mc.utils.set_random_seed(global_seed)
        runs.append(_two_batches(every_layer(None), x))
    for same, again, other in zip(*runs):
        np.testing.assert_array_equal(same[0], again[0])
        np.testing.assert_array_equal(same[1], again[1])
        assert not np.array_equal(same[0], other[0])


@pytest.mark.parametrize("mode,allowed", [
    ("horizontal", lambda x: [x, x[:, ::-1]]), ("vertical", lambda x: [x, x[::-1]]),
    ("horizontal_and_vertical", lambda x: [x, x[::-1, ::-1]])])
def test_flip_keeps_or_flips_each_image_and_both_happen(mode, allowed):
    x = images((64, 5, 6, 2))
    layer = RandomFlip(mode, seed=0)
    y = layer.forward(x, training=True)
    kinds = []
    for xi, yi in zip(x, y):
        matches = [k for k, option in enumerate(allowed(xi)) if np.array_equal(yi, option)]
        assert matches, "an image was changed in a way the mode does not allow"
        kinds.append(matches[0])
    assert set(kinds) == {0, 1}
    np.testing.assert_array_equal(layer.backward(y), x)  # flipping twice is the identity


# ---------------------------------------------------------------------------------
# backward passes: adjoints, gradient checks, numba against NumPy
# ---------------------------------------------------------------------------------
def _adjoint_gap(forward, backward, x, dy):
    """|<A x, dy> - <x, A^T dy>| relative, for a linear forward."""
    y, cache = forward(x)
    lhs, rhs = float(np.sum(y * dy)), float(np.sum(x * backward(dy, cache)))
    return abs(lhs - rhs) / (abs(lhs) + abs(rhs))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
def test_affine_adjoint_identity(backend, fill_mode, interpolation):
    mc.backend.set_backend(backend)
    x, dy = images((3, 9, 8, 2), 1).astype(np.float64), images((3, 9, 8, 2), 2) - 0.5
    t = np.concatenate([A.rotation_transforms([33.0], 9, 8),
                        A.translation_transforms([-3.4], [5.7]),
                        A.zoom_transforms([0.6], [1.7], 9, 8)])
    gap = _adjoint_gap(lambda v: A.affine_forward(v, t, interpolation, fill_mode, 0.0),
                       A.affine_backward, x, dy.astype(np.float64))
    assert gap < 1e-12


@settings(max_examples=20, deadline=None)
@given(top=st.integers(0, 3), left=st.integers(0, 3), ch=st.integers(1, 6),
       cw=st.integers(1, 5), size=st.sampled_from([None, (4, 9), (7, 3)]),
       flip=st.sampled_from(A.FLIP_MODES))
def test_crop_and_flip_adjoint_identity(top, left, ch, cw, size, flip):
    x, other = images((2, 9, 8, 2), 3).astype(np.float64), images((2, 9, 8, 2), 4)
    height, width = size or (None, None)
    y, _ = A.crop_forward(x, top, left, ch, cw, height, width)
    dy = images(y.shape, 5).astype(np.float64)
    assert _adjoint_gap(lambda v: A.crop_forward(v, top, left, ch, cw, height, width),
                        A.crop_backward, x, dy) < 1e-12
    flips = other[:, 0, 0, 0] < 0.5
    assert _adjoint_gap(lambda v: A.flip_forward(v, flips, flip), A.flip_backward,
                        x, other.astype(np.float64)) < 1e-12


def test_contrast_adjoint_identity_where_nothing_is_clipped():
    x, dy = images((3, 6, 5, 2), 6).astype(np.float64), images((3, 6, 5, 2), 7) - 0.5
    gap = _adjoint_gap(lambda v: A.contrast_forward(v, [0.4, 1.3, 2.0], (-1e9, 1e9)),
                       A.contrast_backward, x, dy.astype(np.float64))
    assert gap < 1e-12


@pytest.mark.parametrize("make", [
    lambda: RandomFlip("horizontal", seed=0),
    lambda: RandomTranslation(0.3, 0.2, fill_mode="constant", fill_value=0.3, seed=0),
    lambda: RandomTranslation(0.3, 0.2, interpolation="nearest", fill_mode="wrap", seed=0),
    lambda: RandomRotation(0.4, seed=0), lambda: RandomRotation(0.4, fill_mode="nearest",
                                                                 interpolation="nearest"),
    lambda: RandomZoom((-0.5, 0.5), (-0.3, 0.6), fill_mode="wrap", seed=0),
    lambda: RandomCrop(4, 3, seed=0), lambda: RandomCrop(9, 7),
    lambda: RandomContrast(0.6, value_range=(0.1, 0.9)),
    lambda: RandomBrightness(0.3, value_range=(0, 1)),
    lambda: RandomRotation(0.25, data_format="channels_first", fill_mode="reflect"),
], ids=lambda f: f().__class__.__name__)
def test_gradients_match_central_differences(make):
    layer = make()
    layer.build((6, 5, 2))
    rows = check_layer(layer, images((2, 6, 5, 2), 8), print_fn=None)
    assert all(r["passed"] for r in rows), rows


@pytest.mark.skipif("numba" not in mc.backend.available(), reason="numba does not import")
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
def test_numba_kernels_compute_what_the_array_code_computes(fill_mode, interpolation):
    x, dy = images((4, 11, 10, 3), 9), images((4, 11, 10, 3), 10)
    t = A.rotation_transforms(np.array([-70, 12, 45, 170], np.float32), 11, 10)
    t[:, 2] += np.float32([-9.3, 4.1, 0.5, 23.0])
    out = {}
    for backend in ("numpy", "numba"):
        mc.backend.set_backend(backend)
        y, cache = A.affine_forward(x, t, interpolation, fill_mode, -0.25)
        out[backend] = (y, A.affine_backward(dy, cache))
    np.testing.assert_array_equal(out["numba"][0], out["numpy"][0])
    np.testing.assert_allclose(out["numba"][1], out["numpy"][1], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------
# errors, files, training
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make,exc,words", [
    (lambda: RandomFlip("diagonal"), ValueError, ["RandomFlip", "mode", "'diagonal'"]),
    (lambda: RandomRotation(1.5), ValueError, ["RandomRotation", "factor", "1.5"]),
    (lambda: RandomRotation((0.1, 0.2, 0.3)), ValueError, ["RandomRotation", "factor"]),
    (lambda: RandomTranslation(0.1, (-2, 0)), ValueError, ["RandomTranslation",
                                                           "width_factor", "[-1.0, 1.0]"]),
    (lambda: RandomZoom(-1.0), ValueError, ["RandomZoom", "height_factor", "(-1.0, 1.0]"]),
    (lambda: RandomZoom(0.1, fill_mode="mirror"), NotImplementedError,
     ["RandomZoom", "fill_mode", "'mirror'", "reflect"]),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), NotImplementedError,
     ["RandomRotation", "interpolation", "bilinear"]),
    (lambda: RandomCrop(0, 3), ValueError, ["RandomCrop", "height", "positive"]),
    (lambda: RandomContrast(-0.2), ValueError, ["RandomContrast", "[0, 1]"]),
    (lambda: RandomBrightness(0.1, value_range=5), ValueError, ["RandomBrightness",
                                                                "value_range", "5"]),
    (lambda: RandomFlip(seed=-1), ValueError, ["RandomFlip", "seed"]),
    (lambda: RandomTranslation(0.1, 0.1, fill_value="zero"), ValueError, ["fill_value"]),
])
def test_bad_arguments_are_clear_errors(make, exc, words):
    with pytest.raises(exc) as info:
        make()
    assert all(w in str(info.value) for w in words), str(info.value)


@pytest.mark.parametrize("layer", every_layer(), ids=lambda la: type(la).__name__)
def test_bad_input_shapes_name_the_layer_and_the_expected_rank(layer):
    with pytest.raises(ValueError) as info:
        layer.forward(np.zeros((2, 8, 8), np.float32), training=True)
    message = str(info.value)
    assert type(layer).__name__ in message and "rank 4" in message and "(None, 8, 8)" in message


def test_models_with_augmentation_save_and_load_npz(tmp_path):
    # (GlobalAveragePooling2D: RandomCrop crops in training only, as in Keras)
    model = Sequential([Input((10, 9, 2))] + every_layer(5) +
                       [GlobalAveragePooling2D(), Dense(2)])
    model.save(str(tmp_path / "m.npz"))
    again = load_model(str(tmp_path / "m.npz"))
    assert [la.get_config() for la in again.layers] == [la.get_config() for la in model.layers]
    x = images((3, 10, 9, 2))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    model.save(str(tmp_path / "m.keras"))
    again = load_model(str(tmp_path / "m.keras"))
    assert [la.get_config() for la in again.layers] == [la.get_config() for la in model.layers]


def test_a_model_with_augmentation_fits_and_evaluates():
    (x, y), _ = mc.datasets.load_fashion_mnist()
    x = x[:256, :, :, None].astype(np.float32) / 255
    model = Sequential([Input((28, 28, 1)), RandomFlip("horizontal"),
                        RandomTranslation(0.1, 0.1), Conv2D(4, 3, activation="relu"),
                        mc.layers.MaxPooling2D(2), Flatten(), Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y[:256], batch_size=64, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    loss, accuracy = model.evaluate(x, y[:256], verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1


def test_live_checked_names_are_the_exported_random_layers():
    exported = [n for n in mc.layers.__all__ if n.startswith("Random")]
    assert sorted(exported) == sorted(LIVE_CHECKED)
    assert os.path.basename(__file__) == "test_augmentation.py"


@pytest.mark.parametrize("which", range(7))
def test_the_cupy_backend_computes_the_same(cupy_standin, which):
    """The array code on device arrays (the strict CuPy stand-in where no GPU runs).
    The resampling layers' backward scatters with ``cupy.add.at``, which the stand-in
    lacks: there only their forward pass is compared."""
    x = images((3, 9, 8, 2), 12)
    dy = images((3,) + every_layer(4)[which].compute_output_shape((9, 8, 2)), 13)
    backward = which not in (1, 2, 3) or hasattr(cupy_standin.add, "at")
    results = []
    for backend in ("numpy", "cupy"):
        mc.backend.set_backend(backend)
        layer = every_layer(4)[which]
        y = layer.forward(x, training=True)
        dx = layer.backward(mc.backend.to_device(dy)) if backward else y
        results.append([mc.backend.to_host(y), mc.backend.to_host(dx)])
    for host, device in zip(*results):
        np.testing.assert_allclose(device, host, rtol=1e-6, atol=1e-6)
