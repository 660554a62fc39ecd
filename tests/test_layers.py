"""The layer protocol and Keras 3's numerical semantics, layer by layer.

Expected values come from /work/shared/reference/keras-semantics.md ("doc §n",
each verified against Keras 3) or are computed here independently: by a formula
written out in the test, by NumPy loops, or by scipy.signal.correlate2d /
convolve2d. Nothing expected is computed by minicnn itself. Central-difference
gradient checks live in test_gradients.py; here backward passes are compared
with the closed forms of doc §1-§5.
"""
import math

import numpy as np
import pytest
from scipy.signal import convolve2d, correlate2d
from scipy.special import softmax as scipy_softmax

import minicnn as mc
from minicnn import initializers
from minicnn.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)
from minicnn.utils import set_random_seed

TOL = 1e-5  # float32 layers against float64 references


# ============================================================================
# helpers
# ============================================================================
def rand(shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def close(actual, expected, tol=TOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=tol, atol=tol)


def built(layer, input_shape, weights=None):
    layer.build(input_shape)
    if weights is not None:
        layer.set_weights(weights)
    return layer


def random_weights(layer, seed=1):
    """Random arrays shaped like the layer's weights; BatchNormalization's last
    weight, the moving variance, is kept positive."""
    weights = layer.get_weights()
    positive_last = isinstance(layer, BatchNormalization)
    return [rand(w.shape, seed + i, 0.5, 1.5) if positive_last and i == len(weights) - 1
            else rand(w.shape, seed + i) for i, w in enumerate(weights)]


def forward_backward(layer, x, dy_seed=7, training=True):
    y = np.asarray(layer.forward(x, training=training))
    dy = rand(y.shape, dy_seed)
    return y, dy, np.asarray(layer.backward(dy))


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def to_cf(a):
    """NHWC -> NCHW."""
    return a.transpose(0, 3, 1, 2)


# --- convolution by scipy ----------------------------------------------------
def pad_hw(x, pads, value=0.0):
    return np.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),), constant_values=value)


def conv_ref(x, kernel, bias, strides=(1, 1), pads=((0, 0), (0, 0))):
    """Doc §1 forward: pad explicitly, scipy 'valid' cross-correlation of every
    (input channel, filter) pair, sum over input channels, keep every stride-th
    output, add the bias."""
    xpad = pad_hw(x, pads)
    n, c, f = x.shape[0], x.shape[3], kernel.shape[3]
    out = np.array([[sum(correlate2d(xpad[i, :, :, ch], kernel[:, :, ch, j], mode="valid")
                         for ch in range(c)) for j in range(f)] for i in range(n)])
    return out[:, :, ::strides[0], ::strides[1]].transpose(0, 2, 3, 1) + bias


def conv_backward_ref(x, kernel, dy, strides=(1, 1), pads=((0, 0), (0, 0))):
    """Doc §1 backward through scipy. With dy dilated by the stride (zeros
    between outputs), dK[:, :, ch, f] = correlate2d(xpad, dy_dilated) and
    dxpad[:, :, ch] = sum_f convolve2d(dy_dilated, K[:, :, ch, f], 'full'); rows
    that no window reaches stay 0, then the padding is cropped off."""
    (sh, sw), ((top, _), (left, _)) = strides, pads
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    xpad = pad_hw(x, pads)
    oh, ow = dy.shape[1:3]
    dyd = np.zeros((n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, f))
    dyd[:, ::sh, ::sw] = dy
    dk = np.array([[sum(correlate2d(xpad[i, :, :, ch], dyd[i, :, :, j], mode="valid")[:kh, :kw]
                        for i in range(n)) for j in range(f)] for ch in range(c)])
    dxpad = np.zeros(xpad.shape)
    for i in range(n):
        for ch in range(c):
            full = sum(convolve2d(dyd[i, :, :, j], kernel[:, :, ch, j]) for j in range(f))
            dxpad[i, :full.shape[0], :full.shape[1], ch] = full
    return dxpad[:, top:top + h, left:left + w], dk.transpose(2, 3, 0, 1), dy.sum(axis=(0, 1, 2))


# --- pooling by loops over windows -----------------------------------------------
POOL_REDUCE = {"max": np.max, "min": np.min, "avg": np.mean}
POOL_LAYER = {"max": MaxPooling2D, "min": MinPooling2D, "avg": AveragePooling2D}


def _windows(h, w, pool, strides, pads):
    """(output index, rows slice, cols slice) of each window, clipped to the real
    (unpadded) cells: padding never wins a max/min and is not counted (doc §2)."""
    (ph, pw), (sh, sw), ((top, bottom), (left, right)) = pool, strides, pads
    oh, ow = (h + top + bottom - ph) // sh + 1, (w + left + right - pw) // sw + 1
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - top, j * sw - left
            yield (i, j), slice(max(r0, 0), r0 + ph), slice(max(c0, 0), c0 + pw)


def pool_ref(x, mode, pool, strides, pads=((0, 0), (0, 0))):
    """NHWC pooling forward, window by window."""
    n, h, w, c = x.shape
    wins = list(_windows(h, w, pool, strides, pads))
    oh, ow = wins[-1][0][0] + 1, wins[-1][0][1] + 1
    y = np.empty((n, oh, ow, c))
    for (i, j), rows, cols in wins:
        y[:, i, j, :] = POOL_REDUCE[mode](x[:, rows, cols, :], axis=(1, 2))
    return y


def pool_backward_ref(x, dy, mode, pool, strides, pads=((0, 0), (0, 0))):
    """Max/min: each window's dy goes to its first extreme cell in row-major
    order; avg: dy / (real cells) to every real cell; windows accumulate."""
    n, h, w, c = x.shape
    dx = np.zeros(x.shape)
    for (i, j), rows, cols in _windows(h, w, pool, strides, pads):
        for b in range(n):
            for ch in range(c):
                win, dwin = x[b, rows, cols, ch], dx[b, rows, cols, ch]
                if mode == "avg":
                    dwin += dy[b, i, j, ch] / win.size
                else:
                    flat = win.argmax() if mode == "max" else win.argmin()
                    dwin[np.unravel_index(flat, win.shape)] += dy[b, i, j, ch]
    return dx


# ============================================================================
# the layer protocol: shapes, parameter counts, weight layout
# ============================================================================
# (factory, sample input shape, sample output shape, count_params, weight shapes)
PROTOCOL_CASES = {
    "conv": (lambda: Conv2D(8, 3), (10, 10, 3), (8, 8, 8), 3 * 3 * 3 * 8 + 8,
             [(3, 3, 3, 8), (8,)]),
    "conv_rect_same_s2": (lambda: Conv2D(4, (3, 2), strides=2, padding="same"), (7, 8, 2),
                          (4, 4, 4), 3 * 2 * 2 * 4 + 4, [(3, 2, 2, 4), (4,)]),
    "conv_full": (lambda: Conv2D(5, 3, padding="full"), (6, 6, 2), (8, 8, 5), 95,
                  [(3, 3, 2, 5), (5,)]),
    "conv_full_s2": (lambda: Conv2D(1, 3, strides=2, padding="FULL"), (6, 6, 1), (4, 4, 1), 10,
                     [(3, 3, 1, 1), (1,)]),
    "conv_no_bias": (lambda: Conv2D(4, 3, use_bias=False), (6, 6, 2), (4, 4, 4), 72,
                     [(3, 3, 2, 4)]),
    "conv_channels_first": (lambda: Conv2D(4, 3, data_format="channels_first"), (2, 6, 6),
                            (4, 4, 4), 76, [(3, 3, 2, 4), (4,)]),
    "dense": (lambda: Dense(7), (5,), (7,), 5 * 7 + 7, [(5, 7), (7,)]),
    "dense_rank3": (lambda: Dense(3), (4, 5), (4, 3), 18, [(5, 3), (3,)]),
    "dense_no_bias": (lambda: Dense(3, use_bias=False), (5,), (3,), 15, [(5, 3)]),
    "bn_dense": (lambda: BatchNormalization(), (6,), (6,), 24, [(6,)] * 4),
    "bn_conv": (lambda: BatchNormalization(), (4, 4, 3), (4, 4, 3), 12, [(3,)] * 4),
    "bn_no_center": (lambda: BatchNormalization(center=False), (5,), (5,), 15, [(5,)] * 3),
    "bn_no_scale": (lambda: BatchNormalization(scale=False), (5,), (5,), 15, [(5,)] * 3),
    "bn_neither": (lambda: BatchNormalization(center=False, scale=False), (5,), (5,), 10,
                   [(5,)] * 2),
    "maxpool": (lambda: MaxPooling2D(), (10, 10, 3), (5, 5, 3), 0, []),
    "avgpool3": (lambda: AveragePooling2D(3), (10, 10, 3), (3, 3, 3), 0, []),
    "minpool_same": (lambda: MinPooling2D(2, strides=1, padding="same"), (5, 5, 2), (5, 5, 2),
                     0, []),
    "maxpool_cf": (lambda: MaxPooling2D(3, strides=2, padding="same",
                                        data_format="channels_first"), (2, 7, 7), (2, 4, 4),
                   0, []),
    "flatten": (lambda: Flatten(), (3, 4, 5), (60,), 0, []),
    "dropout": (lambda: Dropout(0.5), (7,), (7,), 0, []),
    "activation": (lambda: Activation("relu"), (3, 4), (3, 4), 0, []),
    # rows of doc §9 (LeNet D and AlexNet E)
    "doc_lenet_conv": (lambda: Conv2D(6, 5), (32, 32, 3), (28, 28, 6), 456,
                       [(5, 5, 3, 6), (6,)]),
    "doc_lenet_avgpool": (lambda: AveragePooling2D(2), (28, 28, 6), (14, 14, 6), 0, []),
    "doc_lenet_dense": (lambda: Dense(120), (400,), (120,), 48_120, [(400, 120), (120,)]),
    "doc_alexnet_conv": (lambda: Conv2D(96, 11, strides=4, activation="relu"), (224, 224, 3),
                         (54, 54, 96), 34_944, [(11, 11, 3, 96), (96,)]),
    "doc_alexnet_pool": (lambda: MaxPooling2D(3, strides=2), (54, 54, 96), (26, 26, 96), 0, []),
    "doc_alexnet_bn": (lambda: BatchNormalization(), (26, 26, 96), (26, 26, 96), 384,
                       [(96,)] * 4),
    "doc_alexnet_conv_same": (lambda: Conv2D(256, 5, padding="same", activation="relu"),
                              (26, 26, 96), (26, 26, 256), 614_656, [(5, 5, 96, 256), (256,)]),
    "doc_alexnet_dense": (lambda: Dense(17, activation="softmax"), (4096,), (17,), 69_649,
                          [(4096, 17), (17,)]),
}
WEIGHTED = [k for k, case in PROTOCOL_CASES.items() if case[4] and not k.startswith("doc")]
UNWEIGHTED = [k for k, case in PROTOCOL_CASES.items() if not case[4] and not k.startswith("doc")]


@pytest.mark.parametrize("case", list(PROTOCOL_CASES))
def test_shapes_params_and_weight_layout(case):
    factory, in_shape, out_shape, params, weight_shapes = PROTOCOL_CASES[case]
    layer = factory()
    assert layer.compute_output_shape(in_shape) == out_shape  # works before build
    layer.build(in_shape)
    assert layer.count_params() == params
    assert [w.shape for w in layer.get_weights()] == weight_shapes
    assert all(isinstance(w, np.ndarray) for w in layer.get_weights())
    y = layer.forward(np.zeros((2,) + in_shape))
    assert y.shape == (2,) + out_shape


# get_weights() order (doc §5; center/scale=False drop beta/gamma) and initial values
BN_VARIANTS = [
    ({}, ["gamma", "beta", "moving_mean", "moving_variance"], [1, 0, 0, 1]),
    ({"center": False}, ["gamma", "moving_mean", "moving_variance"], [1, 0, 1]),
    ({"scale": False}, ["beta", "moving_mean", "moving_variance"], [0, 0, 1]),
    ({"center": False, "scale": False}, ["moving_mean", "moving_variance"], [0, 1]),
]


@pytest.mark.parametrize("kwargs, names, initial", BN_VARIANTS)
def test_batchnorm_weight_order_and_init(kwargs, names, initial):
    layer = built(BatchNormalization(**kwargs), (5,))
    assert len(layer.get_weights()) == len(names) == layer.count_params() // 5
    for w, value in zip(layer.get_weights(), initial):
        np.testing.assert_array_equal(w, np.full(5, value))


@pytest.mark.parametrize("case", WEIGHTED)
def test_set_weights_round_trip(case):
    factory, in_shape = PROTOCOL_CASES[case][:2]
    layer = built(factory(), in_shape)
    new = random_weights(layer)
    layer.set_weights(new)
    got = layer.get_weights()
    assert len(got) == len(new)
    for g, n in zip(got, new):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, n.astype(np.float32))


@pytest.mark.parametrize("case", WEIGHTED)
def test_weights_are_copies_both_ways(case):
    factory, in_shape = PROTOCOL_CASES[case][:2]
    layer = built(factory(), in_shape)
    given = [w.astype(np.float32) for w in random_weights(layer)]  # no cast, no implicit copy
    layer.set_weights(given)
    before = [w.copy() for w in layer.get_weights()]
    x = rand((2,) + in_shape, 3)
    y_before = np.array(layer.forward(x))
    for w in layer.get_weights():   # mutate what get_weights returned ...
        w[...] = 123.0
    for w in given:                 # ... and what set_weights was given
        w[...] = -7.0
    for b, a in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(layer.forward(x), y_before)


@pytest.mark.parametrize("case", WEIGHTED)
def test_set_weights_rejects_wrong_count_or_shape(case):
    factory, in_shape = PROTOCOL_CASES[case][:2]
    layer = built(factory(), in_shape)
    weights = layer.get_weights()
    with pytest.raises(ValueError):
        layer.set_weights(weights[:-1])
    with pytest.raises(ValueError):
        layer.set_weights(weights + [weights[-1]])
    with pytest.raises(ValueError):
        layer.set_weights([np.zeros(w.shape + (1,)) for w in weights])


@pytest.mark.parametrize("case", UNWEIGHTED)
def test_layers_without_weights_have_no_gradients(case):
    factory, in_shape = PROTOCOL_CASES[case][:2]
    layer = factory()
    forward_backward(layer, rand((2,) + in_shape))
    assert layer.get_weights() == [] and layer.get_gradients() == []
    assert layer.count_params() == 0


@pytest.mark.parametrize("use_bias", [True, False])
def test_conv_gradients_order_and_values(use_bias):
    x = rand((2, 6, 5, 3))
    layer = built(Conv2D(4, (3, 2), strides=(2, 1), use_bias=use_bias), x.shape[1:])
    layer.set_weights(random_weights(layer))
    _, dy, dx = forward_backward(layer, x)
    kernel = layer.get_weights()[0]
    dx_ref, dk_ref, db_ref = conv_backward_ref(x, kernel, dy, strides=(2, 1))
    grads = layer.get_gradients()
    assert [g.shape for g in grads] == [w.shape for w in layer.get_weights()]
    close(dx, dx_ref)
    close(grads[0], dk_ref)
    if use_bias:
        close(grads[1], db_ref)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradients_order_and_values(use_bias):
    """Doc §3: dx = dy Wᵀ, dW = xᵀ dy (summed over the batch), db = Σ_n dy."""
    x = rand((4, 5))
    layer = built(Dense(3, use_bias=use_bias), (5,))
    layer.set_weights(random_weights(layer))
    kernel = layer.get_weights()[0]
    y, dy, dx = forward_backward(layer, x)
    bias = layer.get_weights()[1] if use_bias else 0
    close(y, x @ kernel + bias)
    close(dx, dy @ kernel.T)
    grads = layer.get_gradients()
    assert len(grads) == (2 if use_bias else 1)
    close(grads[0], x.T @ dy)
    if use_bias:
        close(grads[1], dy.sum(axis=0))


def test_dense_acts_per_row_on_rank3_input():
    x = rand((2, 3, 4))
    layer = built(Dense(5), (3, 4))
    layer.set_weights(random_weights(layer))
    kernel, bias = layer.get_weights()
    y, dy, dx = forward_backward(layer, x)
    per_row = np.array([[row @ kernel + bias for row in sample] for sample in x])
    close(y, per_row)
    close(dx, dy @ kernel.T)
    dk, db = layer.get_gradients()
    close(dk, np.einsum("nti,ntu->iu", x, dy))
    close(db, dy.sum(axis=(0, 1)))


# ============================================================================
# names
# ============================================================================
def test_default_names_follow_keras():
    layers = [Conv2D(1, 1), Conv2D(1, 1), MaxPooling2D(), AveragePooling2D(2), MinPooling2D(),
              BatchNormalization(), Dense(1), Flatten(), Dropout(0.5), Activation("relu"),
              Dense(1), MaxPooling2D()]
    assert [layer.name for layer in layers] == [
        "conv2d", "conv2d_1", "max_pooling2d", "average_pooling2d", "min_pooling2d",
        "batch_normalization", "dense", "flatten", "dropout", "activation", "dense_1",
        "max_pooling2d_1"]


def test_explicit_name_and_clear_session():
    assert Conv2D(1, 1, name="features").name == "features"
    assert Dense(1, name="logits").name == "logits"
    Conv2D(1, 1)
    assert Conv2D(1, 1).name == "conv2d_1"
    mc.backend.clear_session()
    assert Conv2D(1, 1).name == "conv2d"
    assert Dense(1).name == "dense"


# ============================================================================
# initializers
# ============================================================================
def test_glorot_limit_of_the_doc_example():
    """Doc §1: Conv2D(64, 3) on 32 channels has L = 0.08333."""
    assert math.sqrt(6 / (3 * 3 * 32 + 3 * 3 * 64)) == pytest.approx(0.08333, abs=1e-5)


@pytest.mark.parametrize("factory, in_shape, fan_in, fan_out", [
    (lambda: Conv2D(64, 3), (8, 8, 32), 3 * 3 * 32, 3 * 3 * 64),
    (lambda: Conv2D(16, (5, 3)), (8, 8, 6), 5 * 3 * 6, 5 * 3 * 16),
    (lambda: Dense(300), (200,), 200, 300),
])
def test_glorot_uniform_default_bounds_and_zero_bias(factory, in_shape, fan_in, fan_out):
    set_random_seed(0)
    kernel, bias = built(factory(), in_shape).get_weights()
    limit = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.99 * limit
    assert kernel.std() == pytest.approx(limit / math.sqrt(3), rel=0.05)
    assert abs(kernel.mean()) < 0.05 * limit
    np.testing.assert_array_equal(bias, 0)


FAN_IN, FAN_OUT = 300, 400
_TRUNC = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]; Keras divides by it


def _std(fan):
    return math.sqrt(2 / fan)


# name: (expected std, largest allowed |w| (None: unbounded), expected mean)
INIT_STATS = {
    "glorot_uniform": (_std(FAN_IN + FAN_OUT), math.sqrt(6 / (FAN_IN + FAN_OUT)), 0),
    "glorot_normal": (_std(FAN_IN + FAN_OUT), 2 * _std(FAN_IN + FAN_OUT) / _TRUNC, 0),
    "he_uniform": (_std(FAN_IN), math.sqrt(6 / FAN_IN), 0),
    "he_normal": (_std(FAN_IN), 2 * _std(FAN_IN) / _TRUNC, 0),
    "random_normal": (0.05, None, 0),
    "random_uniform": (0.05 / math.sqrt(3), 0.05, 0),
}


@pytest.mark.parametrize("name", list(INIT_STATS))
def test_initializer_statistics(name):
    std, bound, mean = INIT_STATS[name]
    set_random_seed(1)
    kernel = built(Dense(FAN_OUT, kernel_initializer=name), (FAN_IN,)).get_weights()[0]
    assert kernel.std() == pytest.approx(std, rel=0.03)
    assert abs(kernel.mean() - mean) < 0.02 * std
    if bound is None:  # plain normal: not truncated
        assert np.abs(kernel).max() > 3 * std
    else:
        assert np.abs(kernel).max() <= bound * (1 + 1e-6)
        assert np.abs(kernel).max() > 0.97 * bound


@pytest.mark.parametrize("name, value", [("zeros", 0.0), ("ones", 1.0)])
def test_constant_initializers(name, value):
    layer = built(Conv2D(3, 2, kernel_initializer=name, bias_initializer=name), (4, 4, 2))
    for w in layer.get_weights():
        np.testing.assert_array_equal(w, value)


def test_set_random_seed_makes_builds_repeat():
    def build_all():
        return [w for layer in (built(Conv2D(8, 3), (6, 6, 3)), built(Dense(4), (5,)))
                for w in layer.get_weights()]
    set_random_seed(42)
    first = build_all()
    set_random_seed(42)
    second = build_all()
    third = build_all()  # the generator moved on
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], third[0])


@pytest.mark.parametrize("cls", [initializers.GlorotUniform, initializers.GlorotNormal,
                                 initializers.HeUniform, initializers.HeNormal,
                                 initializers.RandomNormal, initializers.RandomUniform])
def test_seeded_initializer_is_deterministic(cls):
    set_random_seed(1)
    a = cls(seed=3)((3, 3, 2, 4))
    set_random_seed(2)  # the global generator does not matter
    b = cls(seed=3)((3, 3, 2, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, cls(seed=4)((3, 3, 2, 4)))
    k1 = built(Conv2D(4, 3, kernel_initializer=cls(seed=5)), (6, 6, 2)).get_weights()[0]
    k2 = built(Conv2D(4, 3, kernel_initializer=cls(seed=5)), (6, 6, 2)).get_weights()[0]
    np.testing.assert_array_equal(k1, k2)


# ============================================================================
# float type
# ============================================================================
ALL_LAYERS = {
    "conv": (lambda: Conv2D(2, 2), (4, 4, 3)),
    "maxpool": (lambda: MaxPooling2D(), (4, 4, 3)),
    "avgpool": (lambda: AveragePooling2D(2), (4, 4, 3)),
    "minpool": (lambda: MinPooling2D(), (4, 4, 3)),
    "bn": (lambda: BatchNormalization(), (4, 4, 3)),
    "dense": (lambda: Dense(3), (5,)),
    "flatten": (lambda: Flatten(), (4, 4, 3)),
    "dropout": (lambda: Dropout(0.3), (5,)),
    "activation": (lambda: Activation("tanh"), (5,)),
}


def assert_dtypes(layer, x, dtype):
    y, _, dx = forward_backward(layer, x)
    assert y.dtype == dtype and dx.dtype == dtype
    assert all(w.dtype == dtype for w in layer.get_weights())
    assert all(g.dtype == dtype for g in layer.get_gradients())


@pytest.mark.parametrize("case", list(ALL_LAYERS))
def test_default_float32(case):
    factory, in_shape = ALL_LAYERS[case]
    assert mc.backend.floatx() == "float32"
    assert_dtypes(factory(), rand((2,) + in_shape), np.float32)  # float64 input


@pytest.mark.parametrize("case", list(ALL_LAYERS))
def test_set_floatx_float64_applies_to_new_layers(case):
    factory, in_shape = ALL_LAYERS[case]
    old = built(factory(), in_shape)
    mc.backend.set_floatx("float64")
    assert_dtypes(factory(), rand((2,) + in_shape).astype(np.float32), np.float64)
    assert_dtypes(old, rand((2,) + in_shape), np.float32)  # built before: unchanged


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.float64, np.bool_])
@pytest.mark.parametrize("case", ["conv", "maxpool", "dense", "flatten", "dropout", "bn"])
def test_layer_casts_input_to_its_type(case, dtype):
    factory, in_shape = ALL_LAYERS[case]
    x = np.random.default_rng(0).integers(0, 2 if dtype == np.bool_ else 200,
                                          (2,) + in_shape).astype(dtype)
    layer = factory()
    y = layer.forward(x)
    assert y.dtype == np.float32
    twin = built(factory(), in_shape, layer.get_weights())
    np.testing.assert_array_equal(y, twin.forward(x.astype(np.float32)))


# ============================================================================
# Conv2D: cross-correlation, 'same' split, 'full', channels_first (doc §1)
# ============================================================================
def conv_case(filters, kernel_size, in_shape, seed=0, **kwargs):
    """A Conv2D with random weights and a random batch of 2."""
    layer = built(Conv2D(filters, kernel_size, **kwargs), in_shape)
    layer.set_weights(random_weights(layer, seed + 1))
    return layer, rand((2,) + in_shape, seed)


def check_conv_against_scipy(layer, x, strides, pads):
    kernel, bias = layer.get_weights()
    y, dy, dx = forward_backward(layer, x)
    close(y, conv_ref(x, kernel, bias, strides, pads))
    dx_ref, dk_ref, db_ref = conv_backward_ref(x, kernel, dy, strides, pads)
    close(dx, dx_ref)
    close(layer.get_gradients()[0], dk_ref)
    close(layer.get_gradients()[1], db_ref)


def test_conv_is_cross_correlation_not_convolution():
    x = rand((1, 5, 6, 1))
    layer = built(Conv2D(1, 2, use_bias=False), (5, 6, 1))
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    layer.set_weights([k.reshape(2, 2, 1, 1)])
    y = layer.forward(x)[0, :, :, 0]
    close(y, correlate2d(x[0, :, :, 0], k, mode="valid"))
    assert not np.allclose(y, convolve2d(x[0, :, :, 0], k, mode="valid"), atol=1e-3)


@pytest.mark.parametrize("kernel_size", [(3, 3), (3, 2), (2, 4)])
@pytest.mark.parametrize("strides", [1, 2, (2, 1)])
def test_conv_valid_equals_scipy_per_channel(kernel_size, strides):
    layer, x = conv_case(3, kernel_size, (7, 8, 2), strides=strides)
    check_conv_against_scipy(layer, x, pair(strides), ((0, 0), (0, 0)))


# doc §1 'same' split table: H, k, s -> OH, top, bottom
SAME_SPLITS = [(8, 3, 2, 4, 0, 1), (7, 3, 2, 4, 1, 1), (8, 4, 2, 4, 1, 1), (7, 4, 2, 4, 1, 2),
               (6, 4, 1, 6, 1, 2), (28, 3, 2, 14, 0, 1), (9, 2, 2, 5, 0, 1), (5, 1, 2, 3, 0, 0)]


@pytest.mark.parametrize("h, k, s, oh, top, bottom", SAME_SPLITS)
def test_conv_same_split_table(h, k, s, oh, top, bottom):
    layer, x = conv_case(2, k, (h, h, 2), strides=s, padding="same")
    assert layer.compute_output_shape((h, h, 2)) == (oh, oh, 2)
    check_conv_against_scipy(layer, x, (s, s), ((top, bottom), (top, bottom)))


@pytest.mark.parametrize("h, k, s, oh, top, bottom", SAME_SPLITS)
def test_conv_same_split_seen_through_a_delta_kernel(h, k, s, oh, top, bottom):
    """A kernel that is 1 at its top-left tap copies xpad[i*s, j*s]: the first
    output row is 0 exactly when padding was put on top."""
    x = np.arange(1.0, h * h + 1).reshape(1, h, h, 1)
    delta = np.zeros((k, k, 1, 1))
    delta[0, 0] = 1.0
    layer = built(Conv2D(1, k, strides=s, padding="same", use_bias=False), (h, h, 1), [delta])
    xpad = pad_hw(x, ((top, bottom), (top, bottom)))
    np.testing.assert_array_equal(layer.forward(x)[0, :, :, 0], xpad[0, ::s, ::s, 0][:oh, :oh])


def test_conv_same_height_and_width_split_independently():
    """H = 8 and W = 7 with k = 3, s = 2: rows (0, 1), columns (1, 1)."""
    layer, x = conv_case(2, 3, (8, 7, 2), strides=2, padding="same")
    check_conv_against_scipy(layer, x, (2, 2), ((0, 1), (1, 1)))


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("s", [1, 2])
def test_conv_full_equals_scipy_full(k, s):
    layer, x = conv_case(3, k, (6, 7, 2), strides=s, padding="full")
    kernel, bias = layer.get_weights()
    y = layer.forward(x)
    assert y.shape == (2, (6 + k - 2) // s + 1, (7 + k - 2) // s + 1, 3)
    full = np.array([[sum(correlate2d(x[n, :, :, c], kernel[:, :, c, f], mode="full")
                          for c in range(2)) for f in range(3)] for n in range(2)])
    close(y, full[:, :, ::s, ::s].transpose(0, 2, 3, 1) + bias)
    check_conv_against_scipy(layer, x, (s, s), ((k - 1, k - 1), (k - 1, k - 1)))


def test_valid_conv_leaves_uncovered_rows_without_gradient():
    """(H - k) % s != 0: H = 8, k = 3, s = 2 -> windows cover rows 0..6 only."""
    layer, x = conv_case(2, 3, (8, 8, 2), strides=2)
    _, _, dx = forward_backward(layer, x)
    np.testing.assert_array_equal(dx[:, 7, :, :], 0)
    np.testing.assert_array_equal(dx[:, :, 7, :], 0)
    assert np.all(np.abs(dx[:, :7, :7, :]).sum(axis=(0, 3)) > 0)


# ============================================================================
# channels_first = transpose of channels_last (doc §1, §2, §3)
# ============================================================================
CF_CASES = {
    "conv_valid": lambda df: Conv2D(3, (3, 2), data_format=df),
    "conv_same_s2": lambda df: Conv2D(3, 3, strides=2, padding="same", data_format=df),
    "conv_full_s2": lambda df: Conv2D(3, 3, strides=2, padding="full", data_format=df),
    "max_same": lambda df: MaxPooling2D(3, strides=2, padding="same", data_format=df),
    "avg_same": lambda df: AveragePooling2D(3, strides=2, padding="same", data_format=df),
    "min_valid": lambda df: MinPooling2D(2, data_format=df),
    "avg_valid": lambda df: AveragePooling2D((2, 3), strides=(1, 2), data_format=df),
}


@pytest.mark.parametrize("case", list(CF_CASES))
def test_channels_first_is_the_transpose(case):
    x = rand((2, 7, 8, 2))
    last = built(CF_CASES[case]("channels_last"), x.shape[1:])
    first = built(CF_CASES[case]("channels_first"), to_cf(x).shape[1:], last.get_weights())
    y_last, dy, dx_last = forward_backward(last, x)
    y_first = first.forward(to_cf(x), training=True)
    dx_first = first.backward(to_cf(dy))
    close(y_first, to_cf(y_last))
    close(dx_first, to_cf(dx_last))
    for g_first, g_last in zip(first.get_gradients(), last.get_gradients()):
        close(g_first, g_last)


def test_flatten_order_is_h_w_c_for_both_layouts():
    n, h, w, c = 2, 3, 4, 5
    x = np.arange(n * h * w * c, dtype=np.float64).reshape(n, h, w, c)
    y = Flatten().forward(x)
    for hh, ww, cc in np.ndindex(h, w, c):
        np.testing.assert_array_equal(y[:, (hh * w + ww) * c + cc], x[:, hh, ww, cc])
    first = Flatten(data_format="channels_first")
    np.testing.assert_array_equal(first.forward(to_cf(x), training=True), y)
    dy = rand(y.shape)
    np.testing.assert_array_equal(first.backward(dy), to_cf(dy.reshape(x.shape)).astype("f4"))


# ============================================================================
# pooling (doc §2)
# ============================================================================
def pool_layer_case(mode, pool, strides, padding, in_shape, seed=0):
    layer = POOL_LAYER[mode](pool, strides=strides, padding=padding)
    x = np.round(rand((2,) + in_shape, seed) * 4) / 4  # quarter steps: many ties
    return layer, x


@pytest.mark.parametrize("mode", ["max", "min", "avg"])
@pytest.mark.parametrize("pool, strides, in_shape", [
    (2, None, (6, 6, 2)),
    (3, None, (10, 10, 2)),         # 10x10 pool 3 -> 3x3: last row/col dropped
    (3, 2, (7, 7, 2)),              # overlapping windows accumulate
    ((2, 3), (1, 2), (5, 8, 1)),
])
def test_pooling_valid_against_window_loops(mode, pool, strides, in_shape):
    layer, x = pool_layer_case(mode, pool, strides, "valid", in_shape)
    y, dy, dx = forward_backward(layer, x)
    p = pair(pool)
    s = p if strides is None else pair(strides)
    close(y, pool_ref(x, mode, p, s))
    close(dx, pool_backward_ref(x, dy, mode, p, s))


@pytest.mark.parametrize("mode", ["max", "min", "avg"])
@pytest.mark.parametrize("h, k, s, oh, top, bottom", SAME_SPLITS)
def test_pooling_same_split_table(mode, h, k, s, oh, top, bottom):
    layer, x = pool_layer_case(mode, k, s, "same", (h, h, 2))
    assert layer.compute_output_shape((h, h, 2)) == (oh, oh, 2)
    y, dy, dx = forward_backward(layer, x)
    pads = ((top, bottom), (top, bottom))
    close(y, pool_ref(x, mode, (k, k), (s, s), pads))
    close(dx, pool_backward_ref(x, dy, mode, (k, k), (s, s), pads))


def test_pooling_strides_default_to_pool_size():
    assert MaxPooling2D(3).strides == (3, 3)
    assert MaxPooling2D().pool_size == (2, 2)
    assert AveragePooling2D((2, 3)).strides == (2, 3)


def test_valid_pooling_drops_last_row_and_column():
    x = rand((1, 10, 10, 1))
    layer = MaxPooling2D(3)
    y, _, dx = forward_backward(layer, x)
    assert y.shape == (1, 3, 3, 1)
    close(y[0, :, :, 0], x[0, :9, :9, 0].reshape(3, 3, 3, 3).max(axis=(1, 3)))
    np.testing.assert_array_equal(dx[0, 9, :, 0], 0)
    np.testing.assert_array_equal(dx[0, :, 9, 0], 0)


TIE_EXAMPLES = {  # doc §2: input, pool, strides -> dx for dy = 1
    "all_equal": ([[1, 1], [1, 1]], 2, 2, [[1, 0], [0, 0]]),
    "two_fives": ([[0, 5], [5, 1]], 2, 2, [[0, 1], [0, 0]]),
    "5x5_pool3_s2": ([[1, 2, 9, 2, 1],
                      [3, 9, 9, 0, 4],
                      [9, 1, 2, 3, 9],
                      [0, 0, 1, 9, 9],
                      [2, 2, 9, 9, 1]], 3, 2,
                     [[0, 0, 2, 0, 0],
                      [0, 0, 0, 0, 0],
                      [1, 0, 0, 0, 1],
                      [0, 0, 0, 0, 0],
                      [0, 0, 0, 0, 0]]),
}


@pytest.mark.parametrize("sign, cls", [(1, MaxPooling2D), (-1, MinPooling2D)],
                         ids=["max", "min_of_negated"])
@pytest.mark.parametrize("case", list(TIE_EXAMPLES))
def test_pooling_tie_rule_first_extreme_in_row_major_order(case, sign, cls):
    """MinPooling2D(-x) = -MaxPooling2D(x), ties included (doc §2)."""
    image, pool, strides, dx_expected = TIE_EXAMPLES[case]
    x = sign * np.array(image, dtype=np.float64)[None, :, :, None]
    layer = cls(pool, strides=strides)
    y = layer.forward(x, training=True)
    close(sign * y, pool_ref(sign * x, "max", (pool, pool), (strides, strides)))
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx[0, :, :, 0], dx_expected)


def test_minpool_equals_negated_maxpool_with_ties():
    x = np.round(rand((2, 7, 7, 3), 5) * 2)  # values in {-2, ..., 2}: ties everywhere
    mx, mn = MaxPooling2D(3, strides=2, padding="same"), MinPooling2D(3, strides=2, padding="same")
    y_max, dy, dx_max = forward_backward(mx, -x)
    y_min = mn.forward(x, training=True)
    np.testing.assert_array_equal(y_min, -y_max)
    np.testing.assert_array_equal(mn.backward(-dy), -dx_max)


def test_avgpool_same_counts_only_real_cells():
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    layer = AveragePooling2D(2, padding="same")
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y[0, :, :, 0], [[3, 4.5], [7.5, 9]])
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_allclose(dx[0, :, :, 0], [[0.25, 0.25, 0.5],
                                                [0.25, 0.25, 0.5],
                                                [0.5, 0.5, 1.0]])
    np.testing.assert_allclose(layer.forward(np.ones((1, 3, 3, 1)))[0, :, :, 0], np.ones((2, 2)))


def test_maxpool_same_padding_never_wins():
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    y = MaxPooling2D(2, padding="same").forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -3], [-7, -9]])
    y = MinPooling2D(2, padding="same").forward(-x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 3], [7, 9]])


# ============================================================================
# activations (doc §3)
# ============================================================================
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (forward f(x), backward (x, y, dy) -> dx), written out from doc §3
ACTIVATION_FORMULAS = {
    "linear": (lambda x: x, lambda x, y, dy: dy),
    "relu": (lambda x: np.maximum(x, 0), lambda x, y, dy: dy * (x > 0)),
    "tanh": (np.tanh, lambda x, y, dy: dy * (1 - y ** 2)),
    "sigmoid": (_sigmoid, lambda x, y, dy: dy * y * (1 - y)),
    "softmax": (lambda x: scipy_softmax(x, axis=-1),
                lambda x, y, dy: y * (dy - (dy * y).sum(axis=-1, keepdims=True))),
}


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("name", list(ACTIVATION_FORMULAS))
def test_activation_forward_and_backward(name, shape):
    f, df = ACTIVATION_FORMULAS[name]
    x = rand(shape, 0, -3, 3)
    y, dy, dx = forward_backward(Activation(name), x)
    close(y, f(x))
    close(dx, df(x, f(x), dy))


def test_activation_none_is_linear():
    x = rand((3, 4))
    np.testing.assert_array_equal(Activation(None).forward(x), x.astype(np.float32))


def test_relu_derivative_at_zero_is_zero():
    x = np.array([[-1.0, -0.0, 0.0, 1e-30, 2.0]])
    layer = Activation("relu")
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, np.float32([[0, 0, 0, 1e-30, 2]]))
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), [[0, 0, 0, 1, 1]])


def test_softmax_is_over_the_last_axis_and_sums_to_one():
    x = rand((2, 3, 4, 5), 0, -5, 5)
    y = Activation("softmax").forward(x)
    close(y.sum(axis=-1), np.ones((2, 3, 4)))
    close(y, scipy_softmax(x, axis=-1))


def test_softmax_and_sigmoid_do_not_overflow():
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = Activation("softmax").forward(x)
        s = Activation("sigmoid").forward(x)
    close(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 1]], 1e-6)
    close(s, [[1, 0.5, 0], [1, 1, 1], [0, 0, 0.5]], 1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "softmax", "linear"])
@pytest.mark.parametrize("kind", ["conv", "dense"])
def test_fused_activation_equals_separate_activation_layer(kind, activation):
    if kind == "conv":
        fused, plain, in_shape = Conv2D(3, 2, activation=activation), Conv2D(3, 2), (5, 5, 2)
    else:
        fused, plain, in_shape = Dense(4, activation=activation), Dense(4), (6,)
    x = rand((3,) + in_shape, 0, -2, 2)
    built(plain, in_shape)
    plain.set_weights(random_weights(plain))
    built(fused, in_shape, plain.get_weights())
    act = Activation(activation)
    y, dy, dx = forward_backward(fused, x)
    close(y, act.forward(plain.forward(x, training=True), training=True))
    close(dx, plain.backward(act.backward(dy)))
    for g_fused, g_plain in zip(fused.get_gradients(), plain.get_gradients()):
        close(g_fused, g_plain)


# ============================================================================
# BatchNormalization (doc §5)
# ============================================================================
EPS = 1e-3


def batch_stats(x):
    """Per-channel (last axis) mean and *biased* variance over all other axes."""
    axes = tuple(range(x.ndim - 1))
    mu = x.mean(axis=axes)
    return mu, ((x - mu) ** 2).mean(axis=axes)


def bn_formula(x, gamma, beta, mean, var):
    return gamma * (x - mean) / np.sqrt(var + EPS) + beta


def bn_case(in_shape, seed=0, **kwargs):
    """A BN layer with random gamma/beta/moving stats and a batch with channel
    offsets and scales, so that means and variances are far from 0 and 1."""
    layer = built(BatchNormalization(**kwargs), in_shape)
    layer.set_weights(random_weights(layer, seed + 1))
    c = in_shape[-1]
    x = rand((4,) + in_shape, seed) * np.linspace(0.5, 3, c) + np.linspace(-2, 5, c)
    return layer, x


@pytest.mark.parametrize("in_shape", [(5,), (3, 4, 3)], ids=["after_dense", "after_conv"])
def test_batchnorm_training_uses_biased_batch_statistics(in_shape):
    layer, x = bn_case(in_shape)
    gamma, beta, _, _ = layer.get_weights()
    y, dy, dx = forward_backward(layer, x)
    mu, var = batch_stats(x)
    close(y, bn_formula(x, gamma, beta, mu, var))
    m = x.size // x.shape[-1]
    unbiased = var * m / (m - 1)
    assert not np.allclose(y, bn_formula(x, gamma, beta, mu, unbiased), atol=1e-3)
    # doc §5 gradients: sums over the reduction axes
    axes = tuple(range(x.ndim - 1))
    xhat = (x - mu) / np.sqrt(var + EPS)
    dbeta, dgamma = dy.sum(axis=axes), (dy * xhat).sum(axis=axes)
    close(dx, gamma / np.sqrt(var + EPS) * (dy - dbeta / m - xhat * dgamma / m), 1e-4)
    grads = layer.get_gradients()
    assert len(grads) == 2  # [dgamma, dbeta]: moving stats are not trainable
    close(grads[0], dgamma, 1e-4)
    close(grads[1], dbeta, 1e-4)


def test_batchnorm_after_conv_is_per_channel_over_n_h_w():
    layer, x = bn_case((3, 4, 3))
    layer.set_weights([np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)])
    y = layer.forward(x, training=True)
    flat = y.reshape(-1, 3)  # every (n, h, w) of one channel
    var = x.reshape(-1, 3).var(axis=0)
    close(flat.mean(axis=0), np.zeros(3))
    close(flat.var(axis=0), var / (var + EPS), 1e-4)


@pytest.mark.parametrize("momentum", [0.99, 0.9, 0.0])
@pytest.mark.parametrize("in_shape", [(5,), (3, 4, 3)], ids=["after_dense", "after_conv"])
def test_batchnorm_moving_statistics_follow_momentum(momentum, in_shape):
    layer, _ = bn_case(in_shape, momentum=momentum)
    _, _, mm, mv = layer.get_weights()
    mm, mv = mm.astype(np.float64), mv.astype(np.float64)
    for step in range(4):
        x = rand((6,) + in_shape, 10 + step) * (1 + step) + step
        layer.forward(x, training=True)
        mu, var = batch_stats(x)
        mm = momentum * mm + (1 - momentum) * mu
        mv = momentum * mv + (1 - momentum) * var
        close(layer.get_weights()[2], mm)
        close(layer.get_weights()[3], mv)


@pytest.mark.parametrize("in_shape", [(5,), (3, 4, 3)], ids=["after_dense", "after_conv"])
def test_batchnorm_inference_uses_moving_statistics_and_keeps_them(in_shape):
    layer, x = bn_case(in_shape)
    weights = layer.get_weights()
    gamma, beta, mm, mv = weights
    expected = bn_formula(x, gamma, beta, mm, mv)
    close(layer.forward(x), expected)  # training defaults to False
    y, dy, dx = forward_backward(layer, x, training=False)
    close(y, expected)
    for before, after in zip(weights, layer.get_weights()):
        np.testing.assert_array_equal(before, after)
    # doc §5 inference gradients
    axes = tuple(range(x.ndim - 1))
    close(dx, dy * gamma / np.sqrt(mv + EPS))
    dgamma, dbeta = layer.get_gradients()
    close(dgamma, (dy * (x - mm) / np.sqrt(mv + EPS)).sum(axis=axes), 1e-4)
    close(dbeta, dy.sum(axis=axes), 1e-4)


@pytest.mark.parametrize("kwargs, names, initial", BN_VARIANTS)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_variants_forward_and_gradients(kwargs, names, initial, training):
    """Each weight sits where the order says: the forward formula and the
    gradients [dgamma, dbeta] (whichever exist) come out right."""
    layer, x = bn_case((4,), **kwargs)
    weights = dict(zip(names, layer.get_weights()))
    gamma, beta = weights.get("gamma", 1.0), weights.get("beta", 0.0)
    mu, var = batch_stats(x) if training else (weights["moving_mean"],
                                               weights["moving_variance"])
    y, dy, _ = forward_backward(layer, x, training=training)
    close(y, bn_formula(x, gamma, beta, mu, var))
    xhat = (x - mu) / np.sqrt(var + EPS)
    expected = {"gamma": (dy * xhat).sum(axis=0), "beta": dy.sum(axis=0)}
    trainable = [name for name in names if name in expected]
    grads = layer.get_gradients()
    assert len(grads) == len(trainable)
    for grad, name in zip(grads, trainable):
        close(grad, expected[name], 1e-4)


# ============================================================================
# Dropout (doc §4)
# ============================================================================
def dropout_masks(layer, calls, shape=(4, 50)):
    return [np.asarray(layer.forward(np.ones(shape), training=True)) != 0 for _ in range(calls)]


@pytest.mark.parametrize("rate", [0.1, 0.4, 0.75])
def test_dropout_training_drops_a_fraction_rate_and_rescales(rate):
    layer = Dropout(rate, seed=0)
    y = np.asarray(layer.forward(np.ones((1, 100_000)), training=True))
    dropped = np.mean(y == 0)
    assert abs(dropped - rate) < 0.01
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 1 / (1 - rate), rtol=1e-6)


def test_dropout_is_identity_at_inference_and_for_rate_zero():
    x = rand((3, 8))
    for layer, training in [(Dropout(0.5), False), (Dropout(0.0), True)]:
        y, dy, dx = forward_backward(layer, x, training=training)
        close(y, x, 1e-7)
        close(dx, dy, 1e-7)
    np.testing.assert_array_equal(Dropout(0.5).forward(x), x.astype(np.float32))


def test_dropout_backward_uses_the_forward_mask():
    rate = 0.3
    x = rand((5, 40), 0, 0.5, 1.5)  # no zeros: y == 0 exactly where dropped
    layer = Dropout(rate, seed=3)
    y, dy, dx = forward_backward(layer, x)
    keep = y != 0
    assert 0 < keep.mean() < 1
    close(y, x * keep / (1 - rate))
    close(dx, dy * keep / (1 - rate))


def test_dropout_seed_repeats_the_mask_sequence():
    first, second = dropout_masks(Dropout(0.5, seed=7), 3), dropout_masks(Dropout(0.5, seed=7), 3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # a sequence, not one mask repeated
    assert not np.array_equal(first[0], dropout_masks(Dropout(0.5, seed=8), 1)[0])


def test_set_random_seed_repeats_unseeded_dropout_masks():
    set_random_seed(11)
    first = dropout_masks(Dropout(0.5), 2)
    set_random_seed(11)
    second = dropout_masks(Dropout(0.5), 2)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
