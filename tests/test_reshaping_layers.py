"""ZeroPadding2D, Cropping2D, UpSampling2D, Reshape, Rescaling, Identity,
GlobalAveragePooling2D and GlobalMaxPooling2D.

- the layer protocol: output shapes (Keras's formulas, written out here), no
  weights, get_config that rebuilds the layer, argument validation and errors
  that name the layer;
- float64 central-difference gradient checks (``minicnn.gradcheck.check_layer``);
- hypothesis properties against NumPy written here and against identities:
  Cropping2D undoes ZeroPadding2D, AveragePooling2D of size s undoes
  UpSampling2D(s), GlobalAveragePooling2D == AveragePooling2D over the whole
  image, GlobalMaxPooling2D == MaxPooling2D over it (forward; backward without
  ties), channels_first == transpose of channels_last;
- live comparisons with Keras 3 on JAX (forward values, input gradients through
  ``jax.grad`` of the Keras layer's call, output shapes, configs, which
  arguments are refused), skipped without keras.

Every test that computes runs on both CPU backends ("numpy", "numba"); one more runs
the layers on the cupy backend's path (the strict CuPy stand-in without a GPU).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.gradcheck import check_layer
from minicnn.layers import AveragePooling2D, MaxPooling2D
from minicnn.layers.global_pooling import GlobalAveragePooling2D, GlobalMaxPooling2D
from minicnn.layers.reshaping import (Cropping2D, Identity, Reshape, Rescaling, UpSampling2D,
                                      ZeroPadding2D)

from cupy_standin import cupy_standin as cupy_standin_fixture  # noqa: F401 (the fixture)

BACKENDS = [b for b in ("numpy", "numba") if b in mc.backend.available()]
ON_BACKENDS = pytest.mark.parametrize("backend_name", BACKENDS)
FORMATS = ("channels_last", "channels_first")
PROPERTY = settings(deadline=None, max_examples=40)


def use(backend_name):
    mc.backend.set_backend(backend_name)


def rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def to_cf(a):
    """NHWC -> NCHW (contiguous, as user data is)."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def to_format(a, data_format):
    return to_cf(a) if data_format == "channels_first" else a


def forward_backward(layer, x, dy_seed=7):
    y = np.asarray(layer.forward(x, training=True))
    dy = rand(y.shape, dy_seed)
    return y, dy, np.asarray(layer.backward(dy))


# ============================================================================
# the layer protocol: shapes, no weights, configs
# ============================================================================
# (factory, sample input shape, expected sample output shape: Keras's formulas)
SHAPE_CASES = {
    "zeropad_default": (lambda: ZeroPadding2D(), (4, 5, 3), (6, 7, 3)),
    "zeropad_int": (lambda: ZeroPadding2D(2), (4, 5, 3), (8, 9, 3)),
    "zeropad_pair": (lambda: ZeroPadding2D((1, 3)), (4, 5, 3), (6, 11, 3)),
    "zeropad_full": (lambda: ZeroPadding2D(((1, 2), (0, 3))), (4, 5, 3), (7, 8, 3)),
    "zeropad_cf": (lambda: ZeroPadding2D(((1, 2), (0, 3)), data_format="channels_first"),
                   (3, 4, 5), (3, 7, 8)),
    "zeropad_unknown_hw": (lambda: ZeroPadding2D(1), (None, 5, 3), (None, 7, 3)),
    "crop_default": (lambda: Cropping2D(), (4, 5, 3), (4, 5, 3)),
    "crop_int": (lambda: Cropping2D(1), (4, 5, 3), (2, 3, 3)),
    "crop_pair": (lambda: Cropping2D((1, 2)), (4, 5, 3), (2, 1, 3)),
    "crop_doc": (lambda: Cropping2D(((2, 2), (4, 4))), (28, 28, 3), (24, 20, 3)),
    "crop_cf": (lambda: Cropping2D(((0, 2), (1, 0)), data_format="channels_first"),
                (3, 4, 5), (3, 2, 4)),
    "upsample_default": (lambda: UpSampling2D(), (4, 5, 3), (8, 10, 3)),
    "upsample_rect": (lambda: UpSampling2D((1, 3)), (4, 5, 3), (4, 15, 3)),
    "upsample_cf": (lambda: UpSampling2D(3, data_format="channels_first"), (3, 4, 5),
                    (3, 12, 15)),
    "reshape": (lambda: Reshape((3, 4)), (12,), (3, 4)),
    "reshape_infer": (lambda: Reshape((-1, 2, 2)), (12,), (3, 2, 2)),
    "reshape_4d_to_flat": (lambda: Reshape((-1,)), (4, 5, 3), (60,)),
    "reshape_unknown": (lambda: Reshape((-1, 2, 2)), (None,), (None, 2, 2)),
    "rescaling": (lambda: Rescaling(1 / 255), (4, 5, 3), (4, 5, 3)),
    "rescaling_per_channel": (lambda: Rescaling([1.0, 2.0, 3.0], [0.0, 0.5, 1.0]), (4, 5, 3),
                              (4, 5, 3)),
    "identity": (lambda: Identity(), (4, 5, 3), (4, 5, 3)),
    "identity_rank2": (lambda: Identity(), (7,), (7,)),
    "gap": (lambda: GlobalAveragePooling2D(), (4, 5, 3), (3,)),
    "gap_keepdims": (lambda: GlobalAveragePooling2D(keepdims=True), (4, 5, 3), (1, 1, 3)),
    "gap_cf": (lambda: GlobalAveragePooling2D(data_format="channels_first"), (3, 4, 5), (3,)),
    "gap_cf_keepdims": (lambda: GlobalAveragePooling2D("channels_first", True), (3, 4, 5),
                        (3, 1, 1)),
    "gmp": (lambda: GlobalMaxPooling2D(), (4, 5, 3), (3,)),
    "gmp_keepdims_cf": (lambda: GlobalMaxPooling2D("channels_first", keepdims=True), (3, 4, 5),
                        (3, 1, 1)),
    "gmp_unknown_hw": (lambda: GlobalMaxPooling2D(), (None, None, 3), (3,)),
}


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_output_shapes_no_weights(case):
    factory, in_shape, out_shape = SHAPE_CASES[case]
    layer = factory()
    assert layer.compute_output_shape(in_shape) == out_shape  # before build
    if None in in_shape:
        return
    y = layer.forward(rand((2,) + in_shape))
    assert y.shape == (2,) + out_shape and y.dtype == np.float32
    assert layer.count_params() == 0 and layer.get_weights() == []
    assert layer.get_gradients() == []


@pytest.mark.parametrize("case", list(SHAPE_CASES))
def test_get_config_rebuilds_the_layer(case):
    layer = SHAPE_CASES[case][0]()
    config = layer.get_config()
    assert config["name"] == layer.name
    twin = type(layer)(**config)
    assert twin.get_config() == config


def test_names_and_defaults_are_keras():
    names = [ZeroPadding2D().name, Cropping2D().name, UpSampling2D().name, Reshape((1,)).name,
             Rescaling(1.0).name, Identity().name, GlobalAveragePooling2D().name,
             GlobalMaxPooling2D().name, GlobalMaxPooling2D().name]
    assert names == ["zero_padding2d", "cropping2d", "up_sampling2d", "reshape", "rescaling",
                     "identity", "global_average_pooling2d", "global_max_pooling2d",
                     "global_max_pooling2d_1"]
    assert ZeroPadding2D().get_config() == {"name": "zero_padding2d_1",
                                            "padding": ((1, 1), (1, 1)),
                                            "data_format": "channels_last"}
    assert Cropping2D().cropping == ((0, 0), (0, 0))
    assert UpSampling2D().size == (2, 2) and UpSampling2D().interpolation == "nearest"
    assert Rescaling(0.5).offset == 0.0
    assert GlobalAveragePooling2D().keepdims is False
    for layer in (ZeroPadding2D(), Cropping2D(), UpSampling2D(), GlobalMaxPooling2D(),
                  GlobalAveragePooling2D(data_format=None)):
        assert layer.data_format == "channels_last"
    assert UpSampling2D(data_format="Channels_First").data_format == "channels_first"
    assert UpSampling2D(interpolation="NEAREST").interpolation == "nearest"
    assert ZeroPadding2D((np.int64(1), (2, 3))).padding == ((1, 1), (2, 3))  # mixed, as Keras


# ============================================================================
# argument validation and errors that name the layer
# ============================================================================
BAD_ARGUMENTS = [
    (lambda: ZeroPadding2D(-1), ValueError, "ZeroPadding2D: `padding` cannot be negative"),
    (lambda: ZeroPadding2D((1, -1)), ValueError, "cannot be negative"),
    (lambda: ZeroPadding2D(1.5), ValueError, "`padding` must be an int, a tuple of 2 ints"),
    (lambda: ZeroPadding2D((1, 2, 3)), ValueError, "Received: padding=(1, 2, 3)"),
    (lambda: ZeroPadding2D(((1, 2, 3), (1, 1))), ValueError, "height entry of `padding`"),
    (lambda: ZeroPadding2D("ab"), ValueError, "`padding` must be"),
    (lambda: ZeroPadding2D(data_format="nhwc"), ValueError, "unknown data_format"),
    (lambda: Cropping2D(-1), ValueError, "Cropping2D: `cropping` cannot be negative"),
    (lambda: Cropping2D((True, 1)), ValueError, "height entry of `cropping`"),
    (lambda: UpSampling2D(0), ValueError, "UpSampling2D: `size` must be positive"),
    (lambda: UpSampling2D(1.5), ValueError, "`size` must be an int or a tuple of 2 ints"),
    (lambda: UpSampling2D((1, 2, 3)), ValueError, "`size` must be an int or a tuple of 2"),
    (lambda: UpSampling2D(interpolation="area"), ValueError,
     "unknown interpolation; expected one of ['nearest', 'bilinear'"),
    (lambda: UpSampling2D(interpolation=None), ValueError, "unknown interpolation"),
    (lambda: Reshape(12), TypeError, "Reshape: `target_shape` must be a tuple of ints"),
    (lambda: Reshape((-1, -1)), ValueError, "at most one unknown size (-1)"),
    (lambda: Reshape((-2, 6)), ValueError, "must be a positive int, or -1"),
    (lambda: Reshape((0, 12)), ValueError, "must be a positive int, or -1"),
    (lambda: Reshape((2.0, 6)), ValueError, "must be a positive int, or -1"),
    (lambda: Rescaling("1/255"), TypeError, "Rescaling: `scale` must be a number"),
    (lambda: Rescaling(1.0, offset=None), TypeError, "`offset` must be a number"),
    (lambda: GlobalAveragePooling2D(keepdims="False"), TypeError,
     "GlobalAveragePooling2D: `keepdims` must be True or False"),
    (lambda: GlobalMaxPooling2D(data_format="NCHW"), ValueError, "unknown data_format"),
    (lambda: Identity(units=3), TypeError, "Identity: unexpected keyword argument"),
]


@pytest.mark.parametrize("factory, exc, text", BAD_ARGUMENTS)
def test_bad_arguments_are_refused(factory, exc, text):
    with pytest.raises(exc) as info:
        factory()
    assert text in str(info.value)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "lanczos3", "Lanczos5"])
def test_other_keras_interpolations_are_not_implemented(interpolation):
    with pytest.raises(NotImplementedError, match=f"interpolation='{interpolation}' is not "
                                                  "implemented in minicnn; only 'nearest'"):
        UpSampling2D(interpolation=interpolation)


@pytest.mark.parametrize("factory", [ZeroPadding2D, Cropping2D, UpSampling2D,
                                     GlobalAveragePooling2D, GlobalMaxPooling2D])
@pytest.mark.parametrize("data_format, layout", [
    ("channels_last", "(batch, height, width, channels)"),
    ("channels_first", "(batch, channels, height, width)")])
def test_image_layers_need_rank_4(factory, data_format, layout):
    layer = factory(data_format=data_format, name="lay")
    for bad in [(5, 6), (2, 5, 6, 3)]:
        with pytest.raises(ValueError) as info:
            layer.forward(np.zeros((1,) + bad))
        assert f"{type(layer).__name__} 'lay': expected input of rank 4 {layout}" in \
            str(info.value)


def test_cropping_must_leave_a_pixel():
    layer = Cropping2D(((2, 2), (0, 0)), name="crop")
    with pytest.raises(ValueError, match=r"Cropping2D 'crop': cropping \(\(2, 2\), \(0, 0\)\) "
                                         r"removes 4 of the 4 cells of the input's height "
                                         r"\(input shape \(None, 4, 5, 1\)\)"):
        layer.forward(np.zeros((1, 4, 5, 1)))
    cf = Cropping2D(((0, 0), (3, 3)), data_format="channels_first", name="c2")
    with pytest.raises(ValueError, match="removes 6 of the 5 cells of the input's width"):
        cf.compute_output_shape((1, 4, 5))
    assert cf.compute_output_shape((1, 4, 7)) == (1, 4, 1)


def test_reshape_size_must_match():
    layer = Reshape((5, -1), name="r")
    with pytest.raises(ValueError, match=r"Reshape 'r': cannot reshape an input of shape "
                                         r"\(None, 12\) \(12 values per sample\) to "
                                         r"target_shape \(5, -1\)"):
        layer.forward(np.zeros((2, 12)))
    with pytest.raises(ValueError, match="cannot reshape"):
        Reshape((3, 3)).compute_output_shape((12,))
    assert Reshape((3, -1)).forward(np.zeros((2, 2, 6))).shape == (2, 3, 4)


def test_rescaling_array_must_not_change_the_shape():
    layer = Rescaling([1.0, 2.0], name="s")
    with pytest.raises(ValueError, match=r"Rescaling 's': `scale` of shape \(2,\) does not "
                                         r"broadcast against samples of shape \(4, 5, 3\)"):
        layer.forward(np.zeros((1, 4, 5, 3)))
    with pytest.raises(ValueError, match="`offset` of shape"):
        Rescaling(1.0, offset=np.zeros((2, 1, 1))).compute_output_shape((5, 3))


# ============================================================================
# float64 gradient checks (central differences)
# ============================================================================
def tie_free(shape, seed=10):
    """Distinct values 0.01 apart: no max tie within reach of the step."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) - n / 2).reshape(shape) * 0.01


GRADIENT_CASES = {
    "zeropad": lambda df: ZeroPadding2D(((1, 2), (0, 3)), data_format=df),
    "zeropad_int": lambda df: ZeroPadding2D(2, data_format=df),
    "crop": lambda df: Cropping2D(((1, 0), (2, 1)), data_format=df),
    "crop_pair": lambda df: Cropping2D((1, 2), data_format=df),
    "upsample": lambda df: UpSampling2D((2, 3), data_format=df),
    "upsample_default": lambda df: UpSampling2D(data_format=df),
    "gap": lambda df: GlobalAveragePooling2D(data_format=df),
    "gap_keepdims": lambda df: GlobalAveragePooling2D(data_format=df, keepdims=True),
    "gmp": lambda df: GlobalMaxPooling2D(data_format=df),
    "gmp_keepdims": lambda df: GlobalMaxPooling2D(data_format=df, keepdims=True),
}
FLAT_GRADIENT_CASES = {
    "reshape": lambda: Reshape((3, -1)),
    "reshape_flat": lambda: Reshape((-1,)),
    "rescaling": lambda: Rescaling(1 / 127.5, offset=-1.0),
    "rescaling_per_channel": lambda: Rescaling([0.5, -2.0, 3.0], [1.0, 0.0, -1.0]),
    "identity": lambda: Identity(),
}


def assert_gradients_pass(layer, x):
    rows = check_layer(layer, x, print_fn=None)
    assert [r["name"] for r in rows] == ["input"]
    assert rows[0]["passed"], rows
    assert rows[0]["max_rel_error"] < 1e-6, rows  # test_gradients.py's bar


@ON_BACKENDS
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("case", list(GRADIENT_CASES))
def test_gradient_check(backend_name, case, data_format):
    use(backend_name)
    x = to_format(tie_free((2, 5, 6, 3)), data_format)
    assert_gradients_pass(GRADIENT_CASES[case](data_format), x)


@ON_BACKENDS
@pytest.mark.parametrize("case", list(FLAT_GRADIENT_CASES))
def test_gradient_check_any_rank(backend_name, case):
    use(backend_name)
    assert_gradients_pass(FLAT_GRADIENT_CASES[case](), rand((2, 4, 3, 3)))


# ============================================================================
# closed forms (each written out with NumPy here)
# ============================================================================
@ON_BACKENDS
@pytest.mark.parametrize("data_format", FORMATS)
def test_zero_padding_and_cropping_closed_forms(backend_name, data_format):
    use(backend_name)
    x = rand((2, 4, 5, 3))
    (t, b), (l, r) = (1, 2), (3, 0)
    pad = ZeroPadding2D(((t, b), (l, r)), data_format=data_format)
    y, dy, dx = forward_backward(pad, to_format(x, data_format))
    expected = np.zeros((2, 4 + t + b, 5 + l + r, 3))
    expected[:, t:t + 4, l:l + 5] = x
    np.testing.assert_allclose(y, to_format(expected, data_format), rtol=1e-6)
    axes = (2, 3) if data_format == "channels_first" else (1, 2)
    inner = [slice(None)] * 4
    inner[axes[0]], inner[axes[1]] = slice(t, t + 4), slice(l, l + 5)
    np.testing.assert_allclose(dx, dy[tuple(inner)], rtol=1e-6)

    crop = Cropping2D(((t, b), (l, 0)), data_format=data_format)  # right 0: slice to the end
    y, dy, dx = forward_backward(crop, to_format(x, data_format))
    np.testing.assert_allclose(y, to_format(x[:, t:4 - b, l:], data_format), rtol=1e-6)
    back = np.zeros_like(x)
    back[:, t:4 - b, l:] = dy.transpose(0, 2, 3, 1) if data_format == "channels_first" else dy
    np.testing.assert_allclose(dx, to_format(back, data_format), rtol=1e-6)


@ON_BACKENDS
def test_upsampling_repeats_and_sums_blocks(backend_name):
    use(backend_name)
    x = np.arange(6.0).reshape(1, 2, 3, 1)
    layer = UpSampling2D((2, 3))
    y, dy, dx = forward_backward(layer, x)
    np.testing.assert_array_equal(y[0, :, :, 0], np.kron(x[0, :, :, 0], np.ones((2, 3))))
    expected = dy[0, :, :, 0].reshape(2, 2, 3, 3).sum(axis=(1, 3))
    np.testing.assert_allclose(dx[0, :, :, 0], expected, rtol=1e-6)


@ON_BACKENDS
def test_rescaling_values_and_integer_input(backend_name):
    use(backend_name)
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    y = Rescaling(1 / 127.5, offset=-1).forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x / 127.5 - 1, atol=1e-6)
    assert y.min() == -1 and y.max() == 1
    layer = Rescaling([0.5, -2.0, 3.0], [1.0, 0.0, -1.0])
    x = rand((2, 4, 3))
    y, dy, dx = forward_backward(layer, x)
    np.testing.assert_allclose(y, x * [0.5, -2.0, 3.0] + [1.0, 0.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(dx, dy * [0.5, -2.0, 3.0], rtol=1e-6)


@ON_BACKENDS
def test_identity_passes_values_and_gradients(backend_name):
    use(backend_name)
    x = rand((3, 4, 5)).astype(np.float32)
    layer = Identity()
    y, dy, dx = forward_backward(layer, x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, dy.astype(np.float32))


@ON_BACKENDS
@pytest.mark.parametrize("data_format", FORMATS)
def test_global_max_splits_ties_equally(backend_name, data_format):
    """Keras on JAX (checked live below): the gradient of a channel's maximum is
    divided equally among the cells that hold it."""
    use(backend_name)
    x = np.zeros((1, 3, 3, 2))
    x[0, :, :, 0] = [[1, 3, 0], [3, 2, 3], [0, 0, 1]]   # three cells hold 3
    x[0, :, :, 1] = [[5, 0, 0], [0, 0, 0], [0, 0, 0]]   # one cell holds 5
    layer = GlobalMaxPooling2D(data_format=data_format)
    y = layer.forward(to_format(x, data_format), training=True)
    np.testing.assert_array_equal(y, [[3, 5]])
    dx = np.asarray(layer.backward(np.array([[6.0, 2.0]])))
    if data_format == "channels_first":
        dx = dx.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(dx[0, :, :, 0], [[0, 2, 0], [2, 0, 2], [0, 0, 0]])
    np.testing.assert_allclose(dx[0, :, :, 1], [[2, 0, 0], [0, 0, 0], [0, 0, 0]])
    all_equal = GlobalMaxPooling2D()
    all_equal.forward(np.ones((1, 3, 3, 1)), training=True)
    np.testing.assert_allclose(all_equal.backward(np.ones((1, 1))), np.full((1, 3, 3, 1), 1 / 9),
                               rtol=1e-6)


# ============================================================================
# hypothesis properties
# ============================================================================
@st.composite
def images(draw, min_hw=1, max_hw=7):
    """(x NHWC float64, data_format, seed) for a small random batch."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(min_hw, max_hw)),
             draw(st.integers(min_hw, max_hw)), draw(st.integers(1, 3)))
    seed = draw(st.integers(0, 2**32 - 1))
    return rand(shape, seed), draw(st.sampled_from(FORMATS)), seed


edges = st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                  st.tuples(st.integers(0, 3), st.integers(0, 3)))


def spatial_axes(data_format):
    return (2, 3) if data_format == "channels_first" else (1, 2)


@ON_BACKENDS
@PROPERTY
@given(images(), edges)
def test_cropping_undoes_zero_padding(backend_name, image, padding):
    use(backend_name)
    mc.backend.set_floatx("float64")
    x, data_format, seed = image
    x = to_format(x, data_format)
    pad = ZeroPadding2D(padding, data_format=data_format)
    crop = Cropping2D(padding, data_format=data_format)
    padded = pad.forward(x, training=True)
    h, w = (x.shape[a] for a in spatial_axes(data_format))
    ph, pw = (padded.shape[a] for a in spatial_axes(data_format))
    assert (ph, pw) == (h + sum(padding[0]), w + sum(padding[1]))
    assert np.sum(np.abs(padded)) == pytest.approx(np.sum(np.abs(x)))  # the rest is zeros
    np.testing.assert_array_equal(crop.forward(padded, training=True), x)
    dy = rand(x.shape, seed + 1)
    np.testing.assert_array_equal(pad.backward(crop.backward(dy)), dy)


@ON_BACKENDS
@PROPERTY
@given(images(), st.tuples(st.integers(1, 3), st.integers(1, 3)))
def test_average_pooling_undoes_upsampling(backend_name, image, size):
    use(backend_name)
    mc.backend.set_floatx("float64")
    x, data_format, seed = image
    x = to_format(x, data_format)
    up = UpSampling2D(size, data_format=data_format)
    pool = AveragePooling2D(size, data_format=data_format)
    big = up.forward(x, training=True)
    h, w = (x.shape[a] for a in spatial_axes(data_format))
    assert tuple(big.shape[a] for a in spatial_axes(data_format)) == (h * size[0], w * size[1])
    np.testing.assert_allclose(pool.forward(big, training=True), x, rtol=1e-12, atol=1e-12)
    dy = rand(x.shape, seed + 1)
    np.testing.assert_allclose(up.backward(pool.backward(dy)), dy, rtol=1e-12, atol=1e-12)
    # forward against np.repeat along the two spatial axes
    a0, a1 = spatial_axes(data_format)
    np.testing.assert_array_equal(big, np.repeat(np.repeat(x, size[0], a0), size[1], a1))


@ON_BACKENDS
@PROPERTY
@given(images(), st.booleans())
def test_global_average_is_average_pooling_over_the_image(backend_name, image, keepdims):
    use(backend_name)
    mc.backend.set_floatx("float64")
    x, data_format, seed = image
    x = to_format(x, data_format)
    hw = tuple(x.shape[a] for a in spatial_axes(data_format))
    gap = GlobalAveragePooling2D(data_format=data_format, keepdims=keepdims)
    pool = AveragePooling2D(hw, data_format=data_format)
    y, y_pool = gap.forward(x, training=True), pool.forward(x, training=True)
    np.testing.assert_allclose(y, y_pool if keepdims else y_pool.reshape(len(x), -1),
                               rtol=1e-12, atol=1e-12)
    dy = rand(y.shape, seed + 1)
    np.testing.assert_allclose(gap.backward(dy), pool.backward(dy.reshape(y_pool.shape)),
                               rtol=1e-12, atol=1e-12)


@ON_BACKENDS
@PROPERTY
@given(images(), st.booleans(), st.booleans())
def test_global_max_is_max_pooling_over_the_image(backend_name, image, keepdims, ties):
    """Forward always; backward where no channel has a tied maximum (with ties Keras
    splits the gradient, MaxPooling2D picks one cell: checked against a count here)."""
    use(backend_name)
    mc.backend.set_floatx("float64")
    x, data_format, seed = image
    if ties:
        x = np.random.default_rng(seed).integers(-1, 2, x.shape).astype(np.float64)
    x = to_format(x, data_format)
    axes = spatial_axes(data_format)
    hw = tuple(x.shape[a] for a in axes)
    gmp = GlobalMaxPooling2D(data_format=data_format, keepdims=keepdims)
    pool = MaxPooling2D(hw, data_format=data_format)
    y, y_pool = gmp.forward(x, training=True), pool.forward(x, training=True)
    np.testing.assert_array_equal(y, y_pool if keepdims else y_pool.reshape(len(x), -1))
    dy = rand(y.shape, seed + 1)
    dx = gmp.backward(dy)
    peak = x.max(axis=axes, keepdims=True)
    count = (x == peak).sum(axis=axes, keepdims=True)
    np.testing.assert_allclose(dx, (x == peak) * dy.reshape(peak.shape) / count, rtol=1e-12)
    if np.all(count == 1):
        np.testing.assert_allclose(dx, pool.backward(dy.reshape(y_pool.shape)), rtol=1e-12)


IMAGE_LAYERS = {
    "zeropad": lambda df: ZeroPadding2D(((0, 2), (1, 1)), data_format=df),
    "crop": lambda df: Cropping2D(((1, 0), (0, 1)), data_format=df),
    "upsample": lambda df: UpSampling2D((3, 2), data_format=df),
    "gap": lambda df: GlobalAveragePooling2D(data_format=df, keepdims=True),
    "gmp": lambda df: GlobalMaxPooling2D(data_format=df),
}


@ON_BACKENDS
@PROPERTY
@given(st.sampled_from(list(IMAGE_LAYERS)), images(min_hw=2, max_hw=6))
def test_channels_first_is_the_transpose(backend_name, case, image):
    use(backend_name)
    mc.backend.set_floatx("float64")
    x, _, seed = image  # NHWC; crop needs H, W >= 2
    last, first = IMAGE_LAYERS[case]("channels_last"), IMAGE_LAYERS[case]("channels_first")
    y_last, y_first = last.forward(x, training=True), first.forward(to_cf(x), training=True)
    dy = rand(y_last.shape, seed + 1)
    dx_last = last.backward(dy)
    if y_last.ndim == 4:  # the mean may sum in another order: not bit-equal
        np.testing.assert_allclose(y_first, to_cf(y_last), rtol=1e-12, atol=1e-15)
        dx_first = first.backward(to_cf(dy))
    else:
        np.testing.assert_allclose(y_first, y_last, rtol=1e-12, atol=1e-15)
        dx_first = first.backward(dy)
    np.testing.assert_allclose(dx_first, to_cf(dx_last), rtol=1e-12, atol=1e-15)


@ON_BACKENDS
@PROPERTY
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_reshape_is_numpy_reshape_and_round_trips(backend_name, sample, data):
    use(backend_name)
    mc.backend.set_floatx("float64")
    size = math.prod(sample)
    # a target of 1-3 axes whose product is size, one entry possibly -1
    target, rest = [], size
    for _ in range(data.draw(st.integers(0, 2))):
        d = data.draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        target.append(d)
        rest //= d
    target.append(rest)
    target = data.draw(st.permutations(target))
    if data.draw(st.booleans()):
        target[data.draw(st.integers(0, len(target) - 1))] = -1
    x = rand((2,) + tuple(sample), size)
    forth, back = Reshape(target), Reshape(tuple(sample))
    y = forth.forward(x, training=True)
    np.testing.assert_array_equal(y, x.reshape((2,) + tuple(target)))
    assert forth.compute_output_shape(tuple(sample)) == y.shape[1:]
    np.testing.assert_array_equal(back.forward(y, training=True), x)
    dx = rand(x.shape, 3)
    np.testing.assert_array_equal(forth.backward(back.backward(dx)), dx)


@ON_BACKENDS
@PROPERTY
@given(st.floats(-10, 10), st.floats(-10, 10), images())
def test_rescaling_is_affine(backend_name, scale, offset, image):
    use(backend_name)
    mc.backend.set_floatx("float64")
    x, _, seed = image
    layer = Rescaling(scale, offset)
    y, dy, dx = forward_backward(layer, x, seed)
    np.testing.assert_allclose(y, x * scale + offset, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dy * scale, rtol=1e-12, atol=1e-12)


# ============================================================================
# live comparison with Keras 3 (JAX backend, CPU, float32)
# ============================================================================
# the `keras` fixture (Keras 3 on JAX, or a skip) is tests/conftest.py's


# (class name, kwargs, sample input shape (in the layer's layout), input kind)
LIVE_CASES = [
    ("ZeroPadding2D", {}, (5, 6, 3), "real"),
    ("ZeroPadding2D", {"padding": (1, 3)}, (5, 6, 3), "real"),
    ("ZeroPadding2D", {"padding": ((1, 2), (0, 3)), "data_format": "channels_first"},
     (3, 5, 6), "real"),
    ("Cropping2D", {"cropping": 1}, (5, 6, 3), "real"),
    ("Cropping2D", {"cropping": ((0, 2), (1, 0))}, (5, 6, 3), "real"),
    ("Cropping2D", {"cropping": ((2, 1), (0, 3)), "data_format": "channels_first"},
     (3, 5, 6), "real"),
    ("UpSampling2D", {}, (5, 6, 3), "real"),
    ("UpSampling2D", {"size": (1, 3)}, (5, 6, 3), "real"),
    ("UpSampling2D", {"size": 3, "data_format": "channels_first"}, (3, 5, 6), "real"),
    ("Reshape", {"target_shape": (-1,)}, (5, 6, 3), "real"),
    ("Reshape", {"target_shape": (10, -1, 3)}, (5, 6, 3), "real"),
    ("Rescaling", {"scale": 1 / 255}, (5, 6, 3), "real"),
    ("Rescaling", {"scale": 1 / 127.5, "offset": -1.0}, (5, 6, 3), "real"),
    ("Rescaling", {"scale": [0.5, -2.0, 3.0], "offset": [1.0, 0.0, -1.0]}, (5, 6, 3), "real"),
    ("Identity", {}, (5, 6, 3), "real"),
    ("GlobalAveragePooling2D", {}, (5, 6, 3), "real"),
    ("GlobalAveragePooling2D", {"keepdims": True, "data_format": "channels_first"},
     (3, 5, 6), "real"),
    ("GlobalMaxPooling2D", {}, (5, 6, 3), "real"),
    ("GlobalMaxPooling2D", {"keepdims": True}, (5, 6, 3), "ties"),
    ("GlobalMaxPooling2D", {"data_format": "channels_first"}, (3, 5, 6), "ties"),
]
MINICNN = {cls.__name__: cls for cls in (ZeroPadding2D, Cropping2D, UpSampling2D, Reshape,
                                          Rescaling, Identity, GlobalAveragePooling2D,
                                          GlobalMaxPooling2D)}
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def keras_forward_and_gradient(layer, x, dy):
    """Keras's output and d/dx sum(layer(x) * dy), by JAX's autodiff of the layer's call
    (``jax.vjp``: one traced call gives both; ``jax.grad`` of the sum is the same)."""
    import jax
    import jax.numpy as jnp
    y, pullback = jax.vjp(layer, jnp.asarray(x))
    (dx,) = pullback(jnp.asarray(dy))
    return np.asarray(y), np.asarray(dx)


_KERAS_RESULTS = {}  # case index -> what Keras computed (the same for both backends)


def keras_case(keras, index):
    """x, dy (float32), and Keras's y, dx, output shape and config for LIVE_CASES[index]."""
    if index not in _KERAS_RESULTS:
        name, kwargs, sample, kind = LIVE_CASES[index]
        rng = np.random.default_rng(index)
        shape = (2,) + sample
        x = rng.integers(0, 3, shape) if kind == "ties" else rng.standard_normal(shape)
        x = x.astype(np.float32)
        layer = getattr(keras.layers, name)(**kwargs)
        dy = rng.standard_normal(layer.compute_output_shape(shape)).astype(np.float32)
        y, dx = keras_forward_and_gradient(layer, x, dy)
        _KERAS_RESULTS[index] = dict(x=x, dy=dy, y=y, dx=dx, config=layer.get_config(),
                                     out_shape=tuple(layer.compute_output_shape((None,) + sample)))
    return _KERAS_RESULTS[index]


@ON_BACKENDS
@pytest.mark.parametrize("index", range(len(LIVE_CASES)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LIVE_CASES)])
def test_matches_live_keras(keras, backend_name, index):
    use(backend_name)
    name, kwargs, sample, _ = LIVE_CASES[index]
    theirs = keras_case(keras, index)
    ours = MINICNN[name](**kwargs)
    y = np.asarray(ours.forward(theirs["x"], training=True))
    assert y.shape == theirs["y"].shape and y.dtype == np.float32
    np.testing.assert_allclose(y, theirs["y"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.backward(theirs["dy"]), theirs["dx"], rtol=1e-6, atol=1e-7)
    # output shape and configuration
    assert (None,) + ours.compute_output_shape(sample) == theirs["out_shape"]
    for key, value in ours.get_config().items():
        if key != "name":
            assert theirs["config"][key] == value, key


@pytest.mark.parametrize("name, kwargs, sample", [
    ("ZeroPadding2D", {"padding": 2}, (None, None, 3)),
    ("UpSampling2D", {"size": (2, 3), "data_format": "channels_first"}, (3, None, 4)),
    ("Cropping2D", {"cropping": (1, 2)}, (None, 7, 3)),
    ("Reshape", {"target_shape": (-1, 3)}, (None, 6)),
    ("Reshape", {"target_shape": (4, 3)}, (None, 6)),
    ("GlobalMaxPooling2D", {"keepdims": True}, (None, None, 5)),
    ("GlobalAveragePooling2D", {"data_format": "channels_first"}, (5, None, None)),
])
def test_unknown_sizes_as_keras(keras, name, kwargs, sample):
    ours = MINICNN[name](**kwargs).compute_output_shape(sample)
    theirs = getattr(keras.layers, name)(**kwargs).compute_output_shape((None,) + sample)
    assert (None,) + ours == tuple(theirs)


@pytest.mark.parametrize("name, kwargs", [
    ("ZeroPadding2D", {"padding": (1, -1)}), ("ZeroPadding2D", {"padding": 1.5}),
    ("ZeroPadding2D", {"padding": (1, 2, 3)}), ("Cropping2D", {"cropping": -1}),
    ("Cropping2D", {"cropping": ((1, 2, 3), (0, 0))}), ("UpSampling2D", {"size": 0}),
    ("UpSampling2D", {"size": (1, 2, 3)}), ("Reshape", {"target_shape": (-1, -1)}),
    ("Reshape", {"target_shape": (-2, 3)}),
])
def test_refuses_what_keras_refuses(keras, name, kwargs):
    with pytest.raises(ValueError):
        getattr(keras.layers, name)(**kwargs)
    with pytest.raises(ValueError):
        MINICNN[name](**kwargs)


def test_keras_global_max_splits_ties(keras):
    """The fact GlobalMaxPooling2D follows, seen in Keras itself."""
    x = np.array([[[[1.0], [3.0]], [[3.0], [2.0]]]], dtype=np.float32)
    _, dx = keras_forward_and_gradient(keras.layers.GlobalMaxPooling2D(), x,
                                       np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0.5], [0.5, 0]])


# ============================================================================
# the cupy backend's path: the strict CuPy stand-in (tests/cupy_standin.py, which
# refuses any mixing of device and host arrays), or real CuPy where a GPU runs it
# ============================================================================
DEVICE_CASES = [
    lambda: ZeroPadding2D(((1, 2), (0, 3))), lambda: Cropping2D(((1, 0), (2, 1))),
    lambda: UpSampling2D((2, 3), data_format="channels_first"), lambda: Reshape((-1, 3)),
    lambda: Rescaling([0.5, -2.0, 3.0], [1.0, 0.0, -1.0]), lambda: Rescaling(0.5, 1.0),
    lambda: Identity(), lambda: GlobalAveragePooling2D("channels_first", True),
    lambda: GlobalMaxPooling2D(), lambda: Cropping2D(1, data_format="channels_first"),
]


def test_device_path_matches_the_host(cupy_standin_fixture):
    from minicnn.backend import to_host
    x = np.random.default_rng(0).integers(0, 3, (2, 5, 6, 3)).astype(np.float32)  # max ties
    dy = {}

    def run(factory):
        layer = factory()
        y = layer.forward(x, training=True)
        g = dy.setdefault(id(factory), rand(y.shape, 1).astype(np.float32))
        return to_host(y), to_host(layer.backward(g))

    host = [run(f) for f in DEVICE_CASES]
    try:
        mc.backend.set_backend("cupy")
    except RuntimeError as exc:
        pytest.skip(f"the cupy backend does not start here: {exc}")
    for factory, (y_host, dx_host) in zip(DEVICE_CASES, host):
        y, dx = run(factory)
        np.testing.assert_allclose(y, y_host, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(dx, dx_host, rtol=1e-6, atol=1e-7)
