"""Property-based tests (hypothesis) for the window ops: convolution and pooling.

Every property is checked against something written independently of the code
under test:

- closed-form output sizes and 'same' padding splits (written out here, not
  taken from ``minicnn.shapes``),
- the slow loop implementations in ``minicnn.reference`` (the oracle),
- a slice-by-slice average-pooling oracle written in this file,
- algebraic identities: min = -max(-x), conv bilinearity, col2im = im2col^T,
  channels_first = transpose of channels_last.

Configurations come from one composite strategy, ``windows``: input size, window
size (kernel or pool, non-square), strides (1-3, non-square), padding and data
format, always with a non-empty output. Array contents come from a drawn seed,
so the shrunk falsifying example names a small configuration plus a seed.
Shapes stay small (N <= 2, H, W <= 9, C, F <= 3) because the oracle is loops.

Those convolutions all take the numba backend's im2col + GEMM path. Its other two
paths need other shapes, drawn by ``direct_conv_cases`` (stride 1, windows of 25 to
49 cells, <= 3 channels, <= 8 filters) and ``winograd_conv_cases`` (3x3, stride 1,
16-19 channels and filters); for those the oracle is a sum of shifted slices written
here (the loops would take seconds per example); ``near_miss_conv_cases`` draws
layers one step outside either rule, which must stay on im2col. Every convolution
property records which of numba's kernels ran (tests/kernel_spy.py) and checks that
the case took the path it was drawn for.
"""
import contextlib
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from kernel_spy import spy_kernels

import minicnn as mc
from minicnn import ops, reference, shapes
from minicnn.layers import AveragePooling2D, Conv2D, MaxPooling2D, MinPooling2D
from minicnn.ops.im2col import col2im, im2col

CONV_PADDINGS = ("valid", "same", "full")
POOL_PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")
POOL_MODES = ("max", "min", "avg")
POOL_LAYERS = {"max": MaxPooling2D, "min": MinPooling2D, "avg": AveragePooling2D}

# float64 everywhere: im2col + matmul vs. loops differ only in summation order.
RTOL, ATOL = 1e-10, 1e-12

FAST = settings(deadline=None, max_examples=300)   # no loop oracle involved
SLOW = settings(deadline=None, max_examples=200)   # calls minicnn.reference loops

NUMBA = "numba" in mc.backend.available()
needs_numba = pytest.mark.skipif(not NUMBA, reason="numba does not import here")


# ----------------------------------------------------------------------------
# Independent shape arithmetic (Keras's formulas, written out on purpose)
# ----------------------------------------------------------------------------
def expected_length(size, k, s, padding):
    """Output length on one axis."""
    if padding == "valid":
        return (size - k) // s + 1
    if padding == "same":
        return math.ceil(size / s)
    if padding == "full":
        return (size + k - 2) // s + 1
    raise AssertionError(padding)


def expected_pads(size, k, s, padding):
    """(before, after) zero padding on one axis; the odd pixel goes after."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        return total // 2, total - total // 2
    if padding == "full":
        return k - 1, k - 1
    raise AssertionError(padding)


# ----------------------------------------------------------------------------
# Configurations
# ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Window:
    """One sliding-window configuration; shapes are channels_last (NHWC) here,
    ``data_format`` says how the op under test receives them."""
    batch: int
    height: int
    width: int
    channels: int
    size: tuple       # (kh, kw): kernel size or pool size
    strides: tuple    # (sh, sw)
    padding: str
    data_format: str
    seed: int

    @property
    def x_shape(self):
        return (self.batch, self.height, self.width, self.channels)

    @property
    def out_hw(self):
        return tuple(expected_length(n, k, s, self.padding)
                     for n, k, s in zip((self.height, self.width), self.size, self.strides))

    @property
    def pads(self):
        return tuple(expected_pads(n, k, s, self.padding)
                     for n, k, s in zip((self.height, self.width), self.size, self.strides))

    def out_shape(self, channels):
        return (self.batch,) + self.out_hw + (channels,)

    def rng(self, stream=0):
        return np.random.default_rng([self.seed, stream])

    def sample_shape(self, nhwc_sample):
        """A channels_last sample shape (H, W, C) in this configuration's layout."""
        h, w, c = nhwc_sample
        return (c, h, w) if self.data_format == "channels_first" else (h, w, c)


@st.composite
def windows(draw, paddings, max_window=4, max_hw=9, max_batch=2, max_channels=3):
    """A consistent configuration whose output is never empty.

    'same' and 'full' always give at least one window; 'valid' needs the
    window to fit, so the input is drawn at least as large as the window.
    """
    padding = draw(st.sampled_from(paddings))
    size = (draw(st.integers(1, max_window)), draw(st.integers(1, max_window)))
    lowest = size if padding == "valid" else (1, 1)
    return Window(
        batch=draw(st.integers(1, max_batch)),
        height=draw(st.integers(lowest[0], max_hw)),
        width=draw(st.integers(lowest[1], max_hw)),
        channels=draw(st.integers(1, max_channels)),
        size=size,
        strides=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=padding,
        data_format=draw(st.sampled_from(DATA_FORMATS)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@dataclasses.dataclass(frozen=True)
class ConvCase:
    win: Window
    filters: int
    use_bias: bool
    # The path the numba backend must take for it: the strategy that drew the case
    # says which, from the numba kernel set's documented rules (minicnn.kernels.numba_cpu):
    # direct for stride 1, <= 3 channels, <= 8 filters and >= 25 window cells;
    # Winograd for 3x3, stride 1, >= 16 channels and >= 16 filters; im2col otherwise.
    path: str = "im2col"

    def arrays(self):
        """x, kernel, bias (or None) and dy, float64, channels_last."""
        win, rng = self.win, self.win.rng()
        x = rng.standard_normal(win.x_shape)
        w = rng.standard_normal(win.size + (win.channels, self.filters))
        b = rng.standard_normal(self.filters) if self.use_bias else None
        dy = rng.standard_normal(win.out_shape(self.filters))
        return x, w, b, dy


@st.composite
def conv_cases(draw, max_hw=9):
    return ConvCase(win=draw(windows(CONV_PADDINGS, max_hw=max_hw)),
                    filters=draw(st.integers(1, 3)),
                    use_bias=draw(st.booleans()))


@st.composite
def labelled_conv_cases(draw, path, size, channels, filters, max_hw, strides=st.just((1, 1))):
    """A convolution of window ``size``, ``channels``, ``filters`` and ``strides``
    (strategies), on inputs up to max_hw, labelled with the ``path`` it must take."""
    padding = draw(st.sampled_from(CONV_PADDINGS))
    kh, kw = draw(size)
    lowest = (kh, kw) if padding == "valid" else (1, 1)
    win = Window(batch=draw(st.integers(1, 2)),
                 height=draw(st.integers(lowest[0], max(lowest[0], max_hw))),
                 width=draw(st.integers(lowest[1], max(lowest[1], max_hw))),
                 channels=draw(channels), size=(kh, kw), strides=draw(strides),
                 padding=padding, data_format=draw(st.sampled_from(DATA_FORMATS)),
                 seed=draw(st.integers(0, 2**32 - 1)))
    return ConvCase(win=win, filters=draw(filters), use_bias=draw(st.booleans()), path=path)


# kh x kw with 25 to 49 cells: kh in 4..7 and kw from ceil(25 / kh) to 7
DIRECT_WINDOWS = st.integers(4, 7).flatmap(
    lambda kh: st.tuples(st.just(kh), st.integers(-(-25 // kh), 7)))


def direct_conv_cases(max_hw=9):
    """Few channels and filters, large windows, stride 1: the direct convolution."""
    return labelled_conv_cases("direct", DIRECT_WINDOWS, st.integers(1, 3),
                               st.integers(1, 8), max_hw)


def winograd_conv_cases(max_hw=8):
    """3x3, stride 1, >= 16 channels and filters: Winograd F(2x2, 3x3)."""
    return labelled_conv_cases("winograd", st.just((3, 3)), st.integers(16, 19),
                               st.integers(16, 19), max_hw)


def near_miss_conv_cases(max_hw=8):
    """One step outside the direct or the Winograd rule, so im2col + GEMM: 24 cells or
    fewer, 4 channels, 9 filters or stride 2 with a direct-sized layer; 15 channels or
    15 filters, or stride 2, with a Winograd-sized one."""
    ints = st.integers
    small_windows = st.sampled_from([(4, 6), (6, 4), (3, 8), (5, 4)])  # 18-24 cells
    stride_2 = st.sampled_from([(1, 2), (2, 1), (2, 2)])
    # sampled, not one_of: one_of would flatten into any_path_conv_cases' one_of and
    # make near misses 7 in 10 of its examples
    return st.sampled_from([
        labelled_conv_cases("im2col", small_windows, ints(1, 3), ints(1, 8), max_hw),
        labelled_conv_cases("im2col", DIRECT_WINDOWS, st.just(4), ints(1, 8), max_hw),
        labelled_conv_cases("im2col", DIRECT_WINDOWS, ints(1, 3), st.just(9), max_hw),
        labelled_conv_cases("im2col", DIRECT_WINDOWS, ints(1, 3), ints(1, 8), max_hw,
                            strides=stride_2),
        labelled_conv_cases("im2col", st.just((3, 3)), ints(8, 15), ints(16, 18), max_hw),
        labelled_conv_cases("im2col", st.just((3, 3)), ints(16, 18), ints(8, 15), max_hw),
        labelled_conv_cases("im2col", st.just((3, 3)), ints(16, 18), ints(16, 18), max_hw,
                            strides=stride_2)]).flatmap(lambda cases: cases)


def any_path_conv_cases(max_hw=9):
    """Cases of all three convolution paths, and near misses of the two rules."""
    return st.one_of(conv_cases(max_hw=max_hw), direct_conv_cases(min(max_hw, 9)),
                     winograd_conv_cases(min(max_hw, 8)), near_miss_conv_cases(min(max_hw, 8)))


@dataclasses.dataclass(frozen=True)
class PoolCase:
    win: Window
    mode: str
    values: str       # "real": continuous values; "ties": integers in {-1, 0, 1}

    def arrays(self):
        """x and dy, float64, channels_last. 'ties' inputs make almost every
        window hold several equal extremes, so the tie rule decides dx."""
        win, rng = self.win, self.win.rng()
        if self.values == "ties":
            x = rng.integers(-1, 2, size=win.x_shape).astype(np.float64)
        else:
            x = rng.standard_normal(win.x_shape)
        dy = rng.standard_normal(win.out_shape(win.channels))
        return x, dy


@st.composite
def pool_cases(draw, modes=POOL_MODES):
    return PoolCase(win=draw(windows(POOL_PADDINGS)),
                    mode=draw(st.sampled_from(modes)),
                    values=draw(st.sampled_from(("real", "ties"))))


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------
def to_format(a, data_format):
    """NHWC -> the layout ``data_format`` names (contiguous, as user data is)."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if data_format == "channels_first" else a


def from_format(a, data_format):
    """The layout ``data_format`` names -> NHWC."""
    return a.transpose(0, 2, 3, 1) if data_format == "channels_first" else a


def assert_close(actual, expected):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def run_conv_op(x, w, b, dy, win):
    """ops.conv2d forward + backward on NHWC arrays, through ``win.data_format``.
    Returns (y, dx, dw, db) in NHWC."""
    df = win.data_format
    y, cache = ops.conv2d_forward(to_format(x, df), w, b, win.strides, win.padding, df)
    dx, dw, db = ops.conv2d_backward(to_format(dy, df), cache)
    return from_format(y, df), from_format(dx, df), dw, db


def run_pool_op(x, dy, win, mode):
    """ops.pool2d forward + backward on NHWC arrays, through ``win.data_format``."""
    df = win.data_format
    y, cache = ops.pool2d_forward(to_format(x, df), win.size, win.strides, win.padding, mode, df)
    dx = ops.pool2d_backward(to_format(dy, df), cache)
    return from_format(y, df), from_format(dx, df)


def run_layer(layer, x, dy, data_format):
    """layer.forward(training=True) + backward on NHWC arrays. Returns (y, dx) NHWC."""
    y = layer.forward(to_format(x, data_format), training=True)
    dx = layer.backward(to_format(dy, data_format))
    return from_format(np.asarray(y), data_format), from_format(np.asarray(dx), data_format)


def pool_layer(win, mode):
    return POOL_LAYERS[mode](pool_size=win.size, strides=win.strides, padding=win.padding,
                             data_format=win.data_format)


def avg_pool_oracle(x, dy, win):
    """Average pooling written from the definition, one window at a time:
    y = mean of the window's real cells; each real cell gets dy / (real count).
    Uses only this file's padding arithmetic."""
    (top, _), (left, _) = win.pads
    (kh, kw), (sh, sw) = win.size, win.strides
    oh, ow = win.out_hw
    y = np.zeros(win.out_shape(win.channels))
    dx = np.zeros_like(x)
    for i in range(oh):
        r0 = i * sh - top
        rows = slice(max(r0, 0), min(r0 + kh, win.height))
        for j in range(ow):
            c0 = j * sw - left
            cols = slice(max(c0, 0), min(c0 + kw, win.width))
            cells = x[:, rows, cols, :]
            count = cells.shape[1] * cells.shape[2]
            assert count > 0, "a window with no real cell"
            y[:, i, j, :] = cells.sum(axis=(1, 2)) / count
            dx[:, rows, cols, :] += dy[:, i, j, None, None, :] / count
    return y, dx


def recording_kernels():
    """spy_kernels() where numba can run (the default backend there); elsewhere a
    context that records nothing (None)."""
    return spy_kernels("numba") if NUMBA else contextlib.nullcontext()


def assert_conv_path(spy, case):
    """On the numba backend, the kernels of ``case.path`` ran and no other path's.
    (``--hypothesis-show-statistics`` counts the examples of each path.)"""
    event(f"conv path: {case.path}")
    if spy is not None and mc.backend.get_backend() == "numba":
        spy.assert_conv_path(case.path)


def shifted_slices_conv(x, w, b, dy, win):
    """An oracle for any stride: y, dx, dw, db of the convolution of NHWC ``x`` as a
    sum over the window cells (a, b) of the padded input's shifted (strided) slice
    times w[a, b] -- the definition, with this file's padding arithmetic, vectorised
    over pixels instead of looped (fast enough for 19 channels and filters)."""
    (top, bottom), (left, right) = win.pads
    (kh, kw), (sh, sw) = win.size, win.strides
    oh, ow = win.out_hw
    xpad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    y = np.zeros(win.out_shape(w.shape[3]))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    for a in range(kh):
        for c in range(kw):
            rows = slice(a, a + sh * (oh - 1) + 1, sh)
            cols = slice(c, c + sw * (ow - 1) + 1, sw)
            y += xpad[:, rows, cols, :] @ w[a, c]
            dxpad[:, rows, cols, :] += dy @ w[a, c].T
            dw[a, c] = np.einsum("nijc,nijf->cf", xpad[:, rows, cols, :], dy)
    if b is not None:
        y += b
    dx = dxpad[:, top:top + win.height, left:left + win.width, :]
    return y, dx, dw, (dy.sum(axis=(0, 1, 2)) if b is not None else None)


def float64_layers():
    """Layers built after this compute in float64; conftest resets floatx after each
    test. (A plain call, not a fixture: @given reruns the body, not the fixtures.)"""
    mc.backend.set_floatx("float64")


# ----------------------------------------------------------------------------
# 1. Output shapes and the 'same' split
# ----------------------------------------------------------------------------
@settings(FAST)
@given(win=windows(CONV_PADDINGS, max_window=5, max_hw=12), filters=st.integers(1, 3))
def test_conv_output_shape_matches_closed_form(win, filters):
    oh, ow = win.out_hw
    expected_sample = win.sample_shape((oh, ow, filters))
    x = np.zeros((win.batch,) + win.sample_shape((win.height, win.width, win.channels)))
    w = np.zeros(win.size + (win.channels, filters))

    y, _ = ops.conv2d_forward(x, w, None, win.strides, win.padding, win.data_format)
    assert y.shape == (win.batch,) + expected_sample
    assert tuple(ops.conv2d_output_shape((win.height, win.width), win.size, win.strides,
                                         win.padding)) == (oh, ow)

    layer = Conv2D(filters, win.size, strides=win.strides, padding=win.padding,
                   data_format=win.data_format)
    assert layer.compute_output_shape(x.shape[1:]) == expected_sample
    assert layer.forward(x).shape == (win.batch,) + expected_sample


@settings(FAST)
@given(win=windows(POOL_PADDINGS, max_window=5, max_hw=12),
       mode=st.sampled_from(POOL_MODES), default_strides=st.booleans())
def test_pool_output_shape_matches_closed_form(win, mode, default_strides):
    if default_strides:  # strides=None means strides = pool_size, as in Keras
        win = dataclasses.replace(win, strides=win.size)
    strides_arg = None if default_strides else win.strides
    oh, ow = win.out_hw
    expected_sample = win.sample_shape((oh, ow, win.channels))
    x = np.zeros((win.batch,) + win.sample_shape((win.height, win.width, win.channels)))

    y, _ = ops.pool2d_forward(x, win.size, strides_arg, win.padding, mode, win.data_format)
    assert y.shape == (win.batch,) + expected_sample
    assert tuple(ops.pool2d_output_shape((win.height, win.width), win.size, win.strides,
                                         win.padding)) == (oh, ow)

    layer = POOL_LAYERS[mode](pool_size=win.size, strides=strides_arg, padding=win.padding,
                              data_format=win.data_format)
    assert layer.strides == win.strides
    assert layer.compute_output_shape(x.shape[1:]) == expected_sample
    assert layer.forward(x).shape == (win.batch,) + expected_sample


# Rows of the Keras-verified table in keras-semantics.md, plus the property.
@settings(FAST)
@given(size=st.integers(1, 40), k=st.integers(1, 8), s=st.integers(1, 5))
@example(size=8, k=3, s=2).via("keras table")
@example(size=7, k=4, s=2).via("keras table")
@example(size=6, k=4, s=1).via("keras table")
@example(size=9, k=2, s=2).via("keras table")
def test_padding_amounts_match_keras_split(size, k, s):
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    assert shapes.pad_amounts(size, k, s, "same") == (total // 2, total - total // 2)
    assert shapes.pad_amounts(size, k, s, "full") == (k - 1, k - 1)
    assert shapes.pad_amounts(size, k, s, "valid") == (0, 0)
    assert shapes.output_length(size, k, s, "same") == math.ceil(size / s)
    assert shapes.output_length(size, k, s, "full") == (size + k - 2) // s + 1
    if k <= size:
        assert shapes.output_length(size, k, s, "valid") == (size - k) // s + 1


@pytest.mark.parametrize("size, k, s, top, bottom", [
    (8, 3, 2, 0, 1), (7, 3, 2, 1, 1), (8, 4, 2, 1, 1), (7, 4, 2, 1, 2),
    (6, 4, 1, 1, 2), (28, 3, 2, 0, 1), (9, 2, 2, 0, 1), (5, 1, 2, 0, 0),
])
def test_same_split_keras_table(size, k, s, top, bottom):
    assert shapes.pad_amounts(size, k, s, "same") == (top, bottom)


# ----------------------------------------------------------------------------
# 2. im2col convolution == loop convolution (op and Conv2D layer)
# ----------------------------------------------------------------------------
@settings(SLOW)
@given(case=conv_cases())
def test_conv_matches_loop_reference(case):
    win = case.win
    x, w, b, dy = case.arrays()
    y_ref = reference.conv2d_forward_loop(x, w, b, win.strides, win.padding)
    dx_ref, dw_ref, db_ref = reference.conv2d_backward_loop(dy, x, w, win.strides, win.padding)
    assert y_ref.shape == win.out_shape(case.filters)

    with recording_kernels() as spy:
        y, dx, dw, db = run_conv_op(x, w, b, dy, win)
    assert_conv_path(spy, case)
    assert_close(y, y_ref)
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    if case.use_bias:
        assert_close(db, db_ref)
    else:
        assert db is None

    float64_layers()
    layer = Conv2D(case.filters, win.size, strides=win.strides, padding=win.padding,
                   use_bias=case.use_bias, data_format=win.data_format)
    layer.build(win.sample_shape((win.height, win.width, win.channels)))
    layer.set_weights([w, b] if case.use_bias else [w])
    with recording_kernels() as spy:
        y_layer, dx_layer = run_layer(layer, x, dy, win.data_format)
    assert_conv_path(spy, case)
    assert_close(y_layer, y_ref)
    assert_close(dx_layer, dx_ref)
    grads = layer.get_gradients()
    assert len(grads) == (2 if case.use_bias else 1)
    assert_close(grads[0], dw_ref)
    if case.use_bias:
        assert_close(grads[1], db_ref)


@settings(SLOW, max_examples=50)
@given(case=conv_cases())
def test_shifted_slices_oracle_matches_loop_reference(case):
    """The oracle of the direct and Winograd properties below agrees with the loops."""
    win = case.win
    x, w, b, dy = case.arrays()
    y, dx, dw, db = shifted_slices_conv(x, w, b, dy, win)
    assert_close(y, reference.conv2d_forward_loop(x, w, b, win.strides, win.padding))
    dx_ref, dw_ref, db_ref = reference.conv2d_backward_loop(dy, x, w, win.strides, win.padding)
    assert_close(dx, dx_ref)
    assert_close(dw, dw_ref)
    if case.use_bias:
        assert_close(db, db_ref)


@needs_numba
@settings(deadline=None, max_examples=40)
@given(case=st.one_of(direct_conv_cases(), winograd_conv_cases()),
       dtype=st.sampled_from(["float64", "float32"]))
def test_direct_and_winograd_convs_match_the_oracle(case, dtype):
    """numba's direct and Winograd convolutions, op and Conv2D layer, forward and
    backward, in both float types: the oracle's numbers, and the path they were drawn
    for taken (a path rule that declines would leave im2col's right answers)."""
    mc.backend.set_backend("numba")
    win = case.win
    x, w, b, dy = case.arrays()
    want = shifted_slices_conv(x, w, b, dy, win)
    x, w, dy = (a.astype(dtype) for a in (x, w, dy))
    b = None if b is None else b.astype(dtype)

    def check(got):
        for name, g, e in zip(("y", "dx", "dw", "db"), got, want):
            if e is None:
                assert g is None, name
                continue
            assert g.dtype == np.dtype(dtype), name
            if dtype == "float64":
                np.testing.assert_allclose(g, e, rtol=RTOL, atol=1e-11, err_msg=name)
            else:  # float32 rounding, relative to the largest value
                scale = max(1.0, float(np.abs(e).max()))
                np.testing.assert_allclose(g, e, rtol=0, atol=2e-5 * scale, err_msg=name)

    with spy_kernels("numba") as spy:
        got = run_conv_op(x, w, b, dy, win)
    assert_conv_path(spy, case)
    for kernel in spy.ran:
        assert spy.dtypes(kernel) == {np.dtype(dtype)}, kernel
    check(got)

    mc.backend.set_floatx(dtype)
    layer = Conv2D(case.filters, win.size, padding=win.padding, use_bias=case.use_bias,
                   data_format=win.data_format)
    layer.build(win.sample_shape((win.height, win.width, win.channels)))
    layer.set_weights([w, b] if case.use_bias else [w])
    with spy_kernels("numba") as spy:
        y_layer, dx_layer = run_layer(layer, x, dy, win.data_format)
    spy.assert_conv_path(case.path)
    check((y_layer, dx_layer, *layer.get_gradients()))


# ----------------------------------------------------------------------------
# 3. Pooling == loop pooling, ties included
# ----------------------------------------------------------------------------
@settings(SLOW, max_examples=400)
@given(case=pool_cases())
def test_pool_matches_loop_reference(case):
    win, mode = case.win, case.mode
    x, dy = case.arrays()
    y_ref = reference.pool2d_forward_loop(x, win.size, win.strides, win.padding, mode)
    dx_ref = reference.pool2d_backward_loop(dy, x, win.size, win.strides, win.padding, mode)

    y, dx = run_pool_op(x, dy, win, mode)
    if mode == "avg":
        assert_close(y, y_ref)
    else:  # a max/min is one of the inputs: exact
        np.testing.assert_array_equal(y, y_ref)
    # With ties, both must route each window's dy to its first extreme cell
    # (row-major); a different choice moves a whole dy value, far beyond RTOL.
    assert_close(dx, dx_ref)
    # Every window hands on exactly its dy: to one cell (max/min) or split
    # over its real cells (avg, padding never counted).
    np.testing.assert_allclose(dx.sum(), dy.sum(), rtol=RTOL, atol=1e-9)


def test_max_pool_tie_example_from_keras():
    """The 5x5, pool 3, stride 2 example of keras-semantics.md (dy = 1)."""
    x = np.array([[1, 2, 9, 2, 1], [3, 9, 9, 0, 4], [9, 1, 2, 3, 9],
                  [0, 0, 1, 9, 9], [2, 2, 9, 9, 1]], dtype=np.float64)[None, :, :, None]
    expected = np.zeros((5, 5))
    expected[0, 2], expected[2, 0], expected[2, 4] = 2, 1, 1
    y, cache = ops.pool2d_forward(x, (3, 3), (2, 2), "valid", "max")
    dx = ops.pool2d_backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)
    dx_ref = reference.pool2d_backward_loop(np.ones_like(y), x, (3, 3), (2, 2), "valid", "max")
    np.testing.assert_array_equal(dx_ref[0, :, :, 0], expected)


# ----------------------------------------------------------------------------
# 4. MinPooling2D == -MaxPooling2D(-x), forward and backward, ties included
# ----------------------------------------------------------------------------
@settings(FAST)
@given(case=pool_cases(modes=("min",)))
def test_min_pool_is_negated_max_pool_of_negated_input(case):
    win = case.win
    x, dy = case.arrays()

    y_min, dx_min = run_pool_op(x, dy, win, "min")
    y_max, dx_max = run_pool_op(-x, dy, win, "max")
    np.testing.assert_array_equal(y_min, -y_max)
    # d/dx[-max(-x)] . dy = (-1)(-1) dmax(-x) . dy: the two negations cancel.
    np.testing.assert_array_equal(dx_min, dx_max)

    float64_layers()
    y_min_l, dx_min_l = run_layer(pool_layer(win, "min"), x, dy, win.data_format)
    y_max_l, dx_max_l = run_layer(pool_layer(win, "max"), -x, dy, win.data_format)
    np.testing.assert_array_equal(y_min_l, -y_max_l)
    np.testing.assert_array_equal(dx_min_l, dx_max_l)
    np.testing.assert_array_equal(y_min_l, y_min)
    np.testing.assert_array_equal(dx_min_l, dx_min)


# ----------------------------------------------------------------------------
# 5. Average pooling never counts padded cells
# ----------------------------------------------------------------------------
# Constants whose window sums and quotients are exact in binary floating point
# (small multiples of 1/8 cover the integer and the all-ones cases).
EXACT_CONSTANTS = st.integers(-64, 64).map(lambda k: k / 8)


@settings(FAST)
@given(win=windows(POOL_PADDINGS), c=EXACT_CONSTANTS)
@example(win=Window(1, 3, 3, 1, (2, 2), (2, 2), "same", "channels_last", 0), c=1.0)
def test_avg_pool_of_constant_is_that_constant(win, c):
    x = np.full(win.x_shape, c)
    y, _ = run_pool_op(x, np.zeros(win.out_shape(win.channels)), win, "avg")
    np.testing.assert_array_equal(y, np.full(win.out_shape(win.channels), c))
    # The layer in the default float32, too (the constants are exact there).
    y_layer = pool_layer(win, "avg").forward(to_format(x, win.data_format))
    assert y_layer.dtype == np.float32
    np.testing.assert_array_equal(from_format(y_layer, win.data_format),
                                  np.full(win.out_shape(win.channels), c, dtype=np.float32))


@settings(FAST)
@given(win=windows(POOL_PADDINGS), ones_dy=st.booleans())
def test_avg_pool_matches_mean_of_real_cells(win, ones_dy):
    rng = win.rng()
    x = rng.standard_normal(win.x_shape)
    out_shape = win.out_shape(win.channels)
    dy = np.ones(out_shape) if ones_dy else rng.standard_normal(out_shape)

    y_oracle, dx_oracle = avg_pool_oracle(x, dy, win)
    y, dx = run_pool_op(x, dy, win, "avg")
    assert_close(y, y_oracle)
    assert_close(dx, dx_oracle)   # with ones_dy: sum of 1/count over covering windows
    if ones_dy:
        dx_ref = reference.pool2d_backward_loop(dy, x, win.size, win.strides, win.padding,
                                                "avg")
        assert_close(dx, dx_ref)


def test_avg_pool_same_keras_example():
    """AvgPool(2, same) on 3x3 1..9 -> [[3, 4.5], [7.5, 9]] (keras-semantics.md)."""
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    y, _ = ops.pool2d_forward(x, (2, 2), None, "same", "avg")
    np.testing.assert_array_equal(y[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])


# ----------------------------------------------------------------------------
# 6. Algebraic identities (no loop oracle: larger shapes, more examples)
# ----------------------------------------------------------------------------
@settings(FAST)
@given(case=any_path_conv_cases(max_hw=14), a=st.floats(-3, 3), c=st.floats(-3, 3))
def test_conv_is_bilinear_and_backward_is_its_adjoint(case, a, c):
    win = dataclasses.replace(case.win, data_format="channels_last")
    x1, w1, _, dy = case.arrays()
    rng = win.rng(stream=1)
    x2, w2 = rng.standard_normal(x1.shape), rng.standard_normal(w1.shape)

    def conv(x, w):
        return ops.conv2d_forward(x, w, None, win.strides, win.padding)[0]

    scale = 1 + abs(a) + abs(c)
    with recording_kernels() as spy:
        np.testing.assert_allclose(conv(a * x1 + c * x2, w1),
                                   a * conv(x1, w1) + c * conv(x2, w1),
                                   rtol=1e-9, atol=1e-9 * scale)
        np.testing.assert_allclose(conv(x1, a * w1 + c * w2),
                                   a * conv(x1, w1) + c * conv(x1, w2),
                                   rtol=1e-9, atol=1e-9 * scale)

        # y is bilinear in (x, w), so <y, dy> = <x, dx> = <w, dw>.
        y, cache = ops.conv2d_forward(x1, w1, None, win.strides, win.padding)
        dx, dw, _ = ops.conv2d_backward(dy, cache)
    assert_conv_path(spy, case)
    inner = np.sum(y * dy)
    np.testing.assert_allclose(np.sum(x1 * dx), inner, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.sum(w1 * dw), inner, rtol=1e-9, atol=1e-9)


@settings(FAST)
@given(win=windows(CONV_PADDINGS, max_hw=12))
def test_im2col_cuts_windows_and_col2im_is_its_adjoint(win):
    rng = win.rng()
    (top, _), (left, _) = win.pads
    (kh, kw), (sh, sw) = win.size, win.strides
    oh, ow = win.out_hw
    x = rng.standard_normal(win.x_shape)

    col = im2col(x, win.size, win.strides, win.pads, win.out_hw)
    assert col.shape == (win.batch, oh, ow, kh, kw, win.channels)
    # col[n, i, j, a, b, c] = xpad[n, i*sh + a, j*sw + b, c]
    xpad = np.pad(x, ((0, 0),) + win.pads + ((0, 0),))
    for i in range(oh):
        for j in range(ow):
            np.testing.assert_array_equal(
                col[:, i, j], xpad[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :])

    dcol = rng.standard_normal(col.shape)
    dx = col2im(dcol, x.shape, win.size, win.strides, win.pads)
    assert dx.shape == x.shape
    np.testing.assert_allclose(np.sum(col * dcol), np.sum(x * dx), rtol=1e-10, atol=1e-10)


@settings(FAST)
@given(case=any_path_conv_cases(), pool_mode=st.sampled_from(POOL_MODES))
def test_channels_first_is_transpose_of_channels_last(case, pool_mode):
    """The same data through both layouts: conv and one pooling mode."""
    last = dataclasses.replace(case.win, data_format="channels_last")
    first = dataclasses.replace(case.win, data_format="channels_first")
    x, w, b, dy = case.arrays()
    with recording_kernels() as spy:
        both = zip(run_conv_op(x, w, b, dy, first), run_conv_op(x, w, b, dy, last))
    assert_conv_path(spy, case)
    for got, want in both:
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)

    if case.win.padding in POOL_PADDINGS:
        dy_pool = last.rng(stream=1).standard_normal(last.out_shape(last.channels))
        for got, want in zip(run_pool_op(x, dy_pool, first, pool_mode),
                             run_pool_op(x, dy_pool, last, pool_mode)):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
