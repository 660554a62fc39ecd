"""Float64 central-difference checks of every layer's backward pass.

Each case builds one layer, gives it seeded random weights, and compares
``backward``'s input gradient and ``get_gradients()`` with central differences
(``minicnn.gradcheck.check_layer_gradients``). Every relative error must be
below ``TOL``. Kinks are kept out of reach of the finite-difference step by
construction:

- max/min pooling get tie-free inputs whose values are 0.01 apart, 100 times
  the step, so a perturbation never changes a window's winner;
- a relu's inputs are checked to stay further from 0 than any single
  perturbation can move them.

The module-scoped ``_summary`` fixture prints, after the last case,
``gradient checks: N cases (M gradients), largest relative error E``
(visible with ``pytest -s``) and writes that line to
``tests/.gradcheck_summary.txt``.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from minicnn.gradcheck import check_layer_gradients
from minicnn.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)

TOL = 1e-6
# Finite-difference steps. The check is elementwise, so an entry that happens to
# be small (~1e-3) must still be right to 1e-6 relative. A central difference has
# a rounding error of about 1e-16 * |sum(y * dy)| / h (~1e-9 absolute for the
# larger convs here at gradcheck's default h = 1e-6: too much) and a truncation error
# of about h**2 times a third derivative. Functions that are (piecewise) linear in
# the perturbed array -- conv, dense, relu, pooling, flatten, dropout -- have no
# truncation error, so they get a large step; so does batch norm, whose curvature
# is mild for inputs of std 2. tanh, sigmoid and softmax get a smaller one. (Chosen
# from a sweep over 20 seeds per layer type: with these steps the errors are
# ~1e-7; a step 10x smaller or larger pushes a few chance-small entries past 1e-6.)
H_LINEAR = 1e-4
H_SMOOTH = 3e-5
TIE_SPACING = 0.01  # 100 steps: a perturbation never changes a max/min winner
ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "softmax"]
SUMMARY_FILE = Path(__file__).with_name(".gradcheck_summary.txt")

RESULTS = []  # one (case id, {gradient name: relative error}) per checked case


# ----------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    if not RESULTS:
        return
    worst_id, worst = max(((case, max(errs.values())) for case, errs in RESULTS),
                          key=lambda item: item[1])
    n_grads = sum(len(errs) for _, errs in RESULTS)
    line = (f"gradient checks: {len(RESULTS)} cases ({n_grads} gradients), "
            f"largest relative error {worst:.3e}")
    print(f"\n{line}\n(largest in {worst_id})")
    SUMMARY_FILE.write_text(line + "\n")


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
# Input seeds differ from check_layer_gradients' dy seed (0): with the same seed,
# x and dy of a batch norm would be the same numbers, making dx ~0 by symmetry.
def random_input(shape, seed=10):
    return np.random.default_rng(seed).standard_normal(shape)


def tie_free_input(shape, seed=10):
    """Distinct values TIE_SPACING apart (centred on 0): no window ever has a tie, and no
    perturbation by one step can change which cell of a window is the max or min."""
    n = int(np.prod(shape))
    perm = np.random.default_rng(seed).permutation(n)
    return (perm - n / 2).reshape(shape) * TIE_SPACING


def away_from_zero(shape, seed=10):
    """Random values with |x| >= 0.1 (for relu applied directly to the input)."""
    x = random_input(shape, seed)
    return np.sign(x) * (0.1 + np.abs(x))


def random_weight(name, shape, rng):
    if name == "kernel":  # fan-in scaling keeps tanh/sigmoid/softmax out of saturation
        return rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
    if name == "gamma":
        return rng.uniform(0.5, 1.5, shape)
    if name == "moving_variance":
        return rng.uniform(0.5, 2.0, shape)
    return 0.5 * rng.standard_normal(shape)  # bias, beta, moving_mean


def randomize_weights(layer, x, seed=1):
    """Build ``layer`` for ``x`` and give every weight seeded, non-trivial values
    (non-zero bias and beta, non-unit gamma, non-trivial moving statistics)."""
    layer.build(x.shape[1:])
    rng = np.random.default_rng(seed)
    layer.set_weights([random_weight(name, shape, rng)
                       for name, shape in zip(layer.weight_names,
                                              (w.shape for w in layer.get_weights()))])
    return layer


def assert_clear_of_relu_kink(layer_cls, config, layer, x):
    """The pre-activation z of a fused relu (computed by the same layer made linear)
    stays further from 0 than one finite-difference step can move it: perturbing
    one input, kernel or bias entry by h changes z by at most h * max(|w|, |x|, 1)."""
    twin = layer_cls(**{**config, "activation": "linear"})
    twin.build(x.shape[1:])
    twin.set_weights(layer.get_weights())
    z = twin.forward(x)
    largest = max([1.0, np.max(np.abs(x))] + [np.max(np.abs(w)) for w in layer.get_weights()])
    reach = step_for("relu") * largest
    assert np.min(np.abs(z)) > 2 * reach, "relu input too close to its kink; change the seed"


def step_for(activation):
    return H_LINEAR if activation in ("linear", "relu") else H_SMOOTH


def check(request, layer, x, expected, training=True, before_forward=None, h=H_LINEAR):
    """Gradient-check ``layer`` at ``x``, record the errors, assert all below TOL.

    ``expected`` names the gradients that must be checked: "x" plus the
    trainable weights, so a layer that lost a weight or a gradient fails too.
    """
    errors = check_layer_gradients(layer, x, training=training, h=h,
                                   before_forward=before_forward)
    RESULTS.append((request.node.name, errors))
    assert sorted(errors) == sorted(expected)
    bad = {name: err for name, err in errors.items() if not err < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


def shape_id(shape):
    return "x".join(map(str, shape))


def pair_id(value):
    return str(value) if isinstance(value, int) else f"{value[0]}x{value[1]}"


# ----------------------------------------------------------------------------
# Conv2D
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvCase:
    input_shape: tuple          # batch included, in the layer's data format
    kernel_size: object
    strides: object = 1
    padding: str = "valid"
    filters: int = 3
    activation: str = "linear"
    use_bias: bool = True
    data_format: str = "channels_last"

    @property
    def id(self):
        parts = [self.padding, f"k{pair_id(self.kernel_size)}", f"s{pair_id(self.strides)}",
                 f"in{shape_id(self.input_shape)}", f"f{self.filters}"]
        if self.activation != "linear":
            parts.append(self.activation)
        if not self.use_bias:
            parts.append("nobias")
        if self.data_format == "channels_first":
            parts.append("NCHW")
        return "-".join(parts)


GRID_SHAPE = (2, 8, 8, 2)  # even size: 'same' at stride 2 pads 0 top / 1 bottom for k=3
CONV_CASES = (
    # systematic: every padding x stride x kernel 1..5 at one small shape
    [ConvCase(GRID_SHAPE, k, s, p)
     for p in ("valid", "same", "full") for s in (1, 2, 3) for k in range(1, 6)]
    # AlexNet's first layer: kernel 11, stride 4
    + [ConvCase((2, 17, 15, 2), 11, 4, p, filters=2) for p in ("valid", "same", "full")]
    # non-square input, kernels and strides
    + [ConvCase((2, 9, 7, 2), k, s, p)
       for k, s in [((3, 2), (2, 1)), ((2, 4), (1, 3)), ((5, 3), (3, 2))]
       for p in ("valid", "same", "full")]
    # channels_first (input NCHW)
    + [ConvCase((2, 2, 8, 7), 3, 2, p, data_format="channels_first")
       for p in ("valid", "same", "full")]
    + [ConvCase((2, 2, 9, 7), (3, 2), (2, 1), "same", data_format="channels_first"),
       # softmax acts on the last (width) axis here; a per-filter bias is constant
       # along it, so its exact gradient is 0 and a relative error would be noise
       ConvCase((2, 2, 7, 6), 3, 1, "valid", activation="softmax", use_bias=False,
                data_format="channels_first")]
    # batch 1 and batch 3
    + [ConvCase((1, 7, 7, 3), 3, 1, p) for p in ("valid", "same")]
    + [ConvCase((3, 6, 6, 2), 3, 2, "same")]
    # without bias
    + [ConvCase((2, 7, 7, 2), 3, s, p, use_bias=False)
       for p, s in [("valid", 1), ("same", 2), ("full", 1)]]
    # every fused activation
    + [ConvCase((2, 7, 6, 2), 3, 1, "same", activation=a) for a in ACTIVATIONS]
    + [ConvCase((2, 7, 6, 2), (2, 3), 2, "valid", activation=a) for a in ACTIVATIONS[1:]]
)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: c.id)
def test_conv2d(float64, request, case):
    config = dict(filters=case.filters, kernel_size=case.kernel_size, strides=case.strides,
                  padding=case.padding, activation=case.activation, use_bias=case.use_bias,
                  data_format=case.data_format)
    x = random_input(case.input_shape)
    layer = randomize_weights(Conv2D(**config), x)
    if case.activation == "relu":
        assert_clear_of_relu_kink(Conv2D, config, layer, x)
    check(request, layer, x, ["x", "kernel"] + (["bias"] if case.use_bias else []),
          h=step_for(case.activation))


# ----------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------
POOLS = {"max": MaxPooling2D, "avg": AveragePooling2D, "min": MinPooling2D}


@dataclass(frozen=True)
class PoolCase:
    input_shape: tuple
    pool_size: object
    strides: object = None      # None: = pool_size
    padding: str = "valid"
    data_format: str = "channels_last"

    @property
    def id(self):
        strides = "default" if self.strides is None else pair_id(self.strides)
        parts = [self.padding, f"p{pair_id(self.pool_size)}", f"s{strides}",
                 f"in{shape_id(self.input_shape)}"]
        if self.data_format == "channels_first":
            parts.append("NCHW")
        return "-".join(parts)


POOL_CASES = (
    # systematic: padding x pool 2, 3 x strides 1, 2, 3 (pool 3 / stride 2 overlaps)
    [PoolCase((2, 7, 8, 2), p, s, pad)
     for pad in ("valid", "same") for p in (2, 3) for s in (1, 2, 3)]
    + [PoolCase((2, 7, 8, 2), p) for p in (2, 3)]  # default strides
    # non-square input, pools and strides
    + [PoolCase((2, 9, 7, 2), p, s, pad)
       for p, s in [((3, 2), (2, 1)), ((2, 3), (1, 2))] for pad in ("valid", "same")]
    # channels_first
    + [PoolCase((2, 2, 7, 8), 3, 2, pad, data_format="channels_first")
       for pad in ("valid", "same")]
    + [PoolCase((2, 3, 9, 7), (3, 2), (2, 1), "same", data_format="channels_first")]
    # batch 1 and a larger batch
    + [PoolCase((1, 5, 5, 1), 3, 2, pad) for pad in ("valid", "same")]
    + [PoolCase((4, 6, 6, 3), 2, 2, "same")]
)


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("mode", list(POOLS))
def test_pooling(float64, request, mode, case):
    layer = POOLS[mode](pool_size=case.pool_size, strides=case.strides, padding=case.padding,
                        data_format=case.data_format)
    check(request, layer, tie_free_input(case.input_shape), ["x"])


# ----------------------------------------------------------------------------
# Dense, Flatten, Activation, Dropout
# ----------------------------------------------------------------------------
DENSE_CASES = (
    [pytest.param((4, 6), 3, a, True, id=f"in4x6-u3-{a}") for a in ACTIVATIONS]
    + [pytest.param((2, 3, 5), 4, a, True, id=f"rank3-in2x3x5-u4-{a}")
       for a in ("linear", "tanh", "softmax")]
    + [pytest.param((4, 6), 3, a, False, id=f"in4x6-u3-{a}-nobias")
       for a in ("linear", "sigmoid")]
    + [pytest.param((1, 5), 2, "relu", True, id="batch1-in1x5-u2-relu")]
)


@pytest.mark.parametrize("input_shape, units, activation, use_bias", DENSE_CASES)
def test_dense(float64, request, input_shape, units, activation, use_bias):
    config = dict(units=units, activation=activation, use_bias=use_bias)
    x = random_input(input_shape)
    layer = randomize_weights(Dense(**config), x)
    if activation == "relu":
        assert_clear_of_relu_kink(Dense, config, layer, x)
    check(request, layer, x, ["x", "kernel"] + (["bias"] if use_bias else []),
          h=step_for(activation))


@pytest.mark.parametrize("data_format, input_shape", [
    pytest.param("channels_last", (2, 3, 4, 2), id="NHWC-2x3x4x2"),
    pytest.param("channels_first", (2, 2, 3, 4), id="NCHW-2x2x3x4"),
    pytest.param("channels_last", (3, 5), id="rank2-3x5"),
])
def test_flatten(float64, request, data_format, input_shape):
    check(request, Flatten(data_format=data_format), random_input(input_shape), ["x"])


@pytest.mark.parametrize("input_shape", [(3, 5), (2, 3, 3, 4)], ids=shape_id)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation(float64, request, activation, input_shape):
    x = away_from_zero(input_shape)  # relu's kink at 0 is out of reach
    check(request, Activation(activation), x, ["x"], h=step_for(activation))


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.6], ids=lambda r: f"rate{r}")
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_dropout(float64, request, training, rate):
    seed = 7
    layer = Dropout(rate, seed=seed)

    def fixed_mask():
        layer._rng = np.random.default_rng(seed)

    x = away_from_zero((3, 4, 5))
    fixed_mask()
    dropped = int(np.sum(layer.forward(x, training=training) == 0))
    # x has no zeros, so a zero output is a dropped unit: check the mask is non-trivial
    # exactly when dropout is active
    assert (dropped > 0) == (training and rate > 0)
    check(request, layer, x, ["x"], training=training, before_forward=fixed_mask)


# ----------------------------------------------------------------------------
# BatchNormalization
# ----------------------------------------------------------------------------
BN_INPUTS = [
    pytest.param((6, 4), -1, id="dense-6x4"),
    pytest.param((2, 3, 3, 4), -1, id="conv-NHWC-2x3x3x4"),
    pytest.param((2, 4, 3, 3), 1, id="conv-NCHW-2x4x3x3-axis1"),
]
BN_AFFINE = [
    pytest.param(True, True, id="scale-center"),
    pytest.param(False, True, id="center-only"),
    pytest.param(True, False, id="scale-only"),
    pytest.param(False, False, id="no-affine"),
]


@pytest.mark.parametrize("scale, center", BN_AFFINE)
@pytest.mark.parametrize("input_shape, axis", BN_INPUTS)
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_batch_normalization(float64, request, training, input_shape, axis, scale, center):
    # Shift and scale the input so the batch statistics differ from the
    # (randomized, non-trivial) moving statistics used in inference.
    x = 2.0 * random_input(input_shape) + 0.7
    layer = randomize_weights(BatchNormalization(axis=axis, scale=scale, center=center), x)
    expected = ["x"] + (["gamma"] if scale else []) + (["beta"] if center else [])
    check(request, layer, x, expected, training=training, h=H_LINEAR)
