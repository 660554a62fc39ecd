"""BatchNormalization's and Dropout's numba kernels (minicnn.kernels.numba_normalization)
against the array code of minicnn.ops and against float64: the same formulas, the
kernels' float64 sums at least as accurate as the array code's; Dropout's masks the
same bits on every backend and for any slice of the batch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minicnn as mc
from minicnn.ops import batchnorm as bn_ops, dropout as dropout_ops

pytestmark = pytest.mark.skipif("numba" not in mc.backend.available(),
                                reason="numba does not import here")


@pytest.fixture(autouse=True)
def numpy_afterwards():
    yield
    mc.backend.set_backend("numpy")


def run(backend, x, dy, gamma, beta, mean, var, training, epsilon=1e-3):
    mc.backend.set_backend(backend)
    y, cache, stats = bn_ops.batchnorm_forward(x, gamma, beta, mean, var, momentum=0.9,
                                               epsilon=epsilon, training=training)
    used_kernels = isinstance(cache, bn_ops._KernelCache)
    dx, dgamma, dbeta = bn_ops.batchnorm_backward(dy, cache)
    return [y, dx, dgamma, dbeta, *stats], used_kernels


def arrays(rng, shape, center, spread, dtype=np.float32):
    c = shape[-1]
    x = (rng.standard_normal(shape) * spread + center).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    vectors = [(rng.random(c) + 0.5).astype(dtype), rng.standard_normal(c).astype(dtype),
               rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)]
    return x, dy, vectors


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from([(2, 3), (5, 7), (3, 4, 4, 5), (2, 9, 9, 16), (64, 300),
                              (9, 3, 3, 1), (1, 1, 1, 33)]),
       training=st.booleans(), scale=st.booleans(), center=st.booleans(),
       offset=st.floats(-50, 50), spread=st.floats(0.01, 20), seed=st.integers(0, 2**16))
def test_kernels_compute_the_array_codes_numbers(shape, training, scale, center, offset,
                                                 spread, seed):
    """float32 kernels and float32 array code both near the float64 truth; the kernels
    never further from it than the array code (with a float32 rounding margin)."""
    x, dy, (gamma, beta, mean, var) = arrays(np.random.default_rng(seed), shape, offset,
                                             spread)
    gamma, beta = (gamma if scale else None), (beta if center else None)
    fast, used = run("numba", x, dy, gamma, beta, mean, var, training)
    assert used
    plain, used_plain = run("numpy", x, dy, gamma, beta, mean, var, training)
    assert not used_plain
    as64 = [None if v is None else v.astype(np.float64) for v in (gamma, beta, mean, var)]
    truth, _ = run("numpy", x.astype(np.float64), dy.astype(np.float64), *as64, training)
    for name, f, p, t in zip(["y", "dx", "dgamma", "dbeta", "mean", "var"], fast, plain,
                             truth):
        if t is None:
            assert f is None and p is None
            continue
        assert f.dtype == np.float32 and f.shape == t.shape, name
        size = float(np.abs(t).max()) + 1e-3
        if name == "dx":  # dx may cancel to ~0; its terms have the size of g * dy
            spread64 = x.astype(np.float64).reshape(-1, shape[-1]).var(axis=0).min()
            size += float(np.abs(dy).max() * (1 if gamma is None else gamma.max())
                          / np.sqrt(min(spread64, var.min()) + 1e-3))
        fast_error = float(np.abs(f - t).max())
        plain_error = float(np.abs(p - t).max())
        assert fast_error <= max(plain_error * 1.5, 4e-6 * size), (name, fast_error,
                                                                   plain_error)


def test_the_kernels_sums_beat_float32_sums_on_a_large_offset_batch():
    """Mean 30, spread 0.5, 100k rows per channel: the array code's float32 sums lose
    digits that the kernels' float64 sums keep."""
    x, dy, (gamma, beta, mean, var) = arrays(np.random.default_rng(0), (128, 28, 28, 8),
                                             30.0, 0.5)
    fast, _ = run("numba", x, dy, gamma, beta, mean, var, True)
    plain, _ = run("numpy", x, dy, gamma, beta, mean, var, True)
    truth, _ = run("numpy", *(a.astype(np.float64) for a in (x, dy, gamma, beta, mean, var)),
                   True)
    fast_error = np.abs(fast[0] - truth[0]).max()
    assert fast_error < 2e-6
    assert fast_error < np.abs(plain[0] - truth[0]).max()


def test_float64_channels_first_and_strided_inputs_take_the_array_code():
    rng = np.random.default_rng(1)
    mc.backend.set_backend("numba")
    for x, axis in [(rng.random((4, 3, 5, 5)), -1), (rng.random((4, 3, 5, 5), np.float32), 1),
                    (rng.random((4, 5, 5, 6), np.float32)[..., ::2], -1)]:
        c = x.shape[axis]
        ones, zeros = np.ones(c, x.dtype), np.zeros(c, x.dtype)
        _, cache, _ = bn_ops.batchnorm_forward(x, ones, zeros, zeros, ones, axis=axis,
                                               training=True)
        assert not isinstance(cache, bn_ops._KernelCache)


def test_the_sums_do_not_depend_on_the_thread_count():
    """Fixed chunks, added in order: the parallel and the serial compilation agree bit for
    bit (the array is large enough for the parallel one to run)."""
    import numba
    x, dy, (gamma, beta, mean, var) = arrays(np.random.default_rng(2), (128, 32, 32, 16),
                                             1.0, 2.0)
    assert x.size >= mc.kernels.numba_launch.PARALLEL_MIN_VALUES
    first, _ = run("numba", x, dy, gamma, beta, mean, var, True)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        second, _ = run("numba", x, dy, gamma, beta, mean, var, True)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


# ---------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(shape=st.sampled_from([(1, 1), (3, 5), (8, 6, 6, 4), (2, 4097)]),
       rate=st.floats(0.01, 0.95), key=st.tuples(st.integers(0, 2**32 - 1),
                                                  st.integers(0, 2**32 - 1)),
       offset=st.sampled_from([0, 17, 2**32 - 40, 2**33 + 5]))
def test_dropout_masks_are_the_same_on_every_backend(shape, rate, key, offset):
    """The numba kernel, the array code on NumPy and the plain mask agree bit for bit,
    forward and backward, also where the unit index crosses 2**32."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    results = []
    for backend in ("numba", "numpy"):
        mc.backend.set_backend(backend)
        y, cache = dropout_ops.dropout_forward(x, rate, key, offset)
        results.append((y, dropout_ops.dropout_backward(x * 2, cache)))
    (y1, g1), (y2, g2) = results
    assert np.array_equal(y1, y2) and np.array_equal(g1, g2)
    mask = dropout_ops.keep_mask(shape, key, rate, offset)
    np.testing.assert_array_equal(y1 != 0, mask & (x != 0))
    np.testing.assert_array_equal(y1[mask], x[mask] * np.float32(1 / (1 - rate)))
    np.testing.assert_array_equal(g1, np.where(mask, x * 2 * np.float32(1 / (1 - rate)), 0))


def test_a_slice_of_the_batch_computes_its_part_of_the_mask():
    x = np.random.default_rng(0).standard_normal((10, 6, 6, 3)).astype(np.float32)
    mc.backend.set_backend("numba")
    whole, _ = dropout_ops.dropout_forward(x, 0.4, (5, 9))
    per_row = x[0].size
    parts = [dropout_ops.dropout_forward(x[a:b], 0.4, (5, 9), a * per_row)[0]
             for a, b in [(0, 3), (3, 4), (4, 10)]]
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_masks_keep_one_minus_rate_without_pattern(rate):
    """The kept share within 5 standard deviations of 1 - rate; neighbouring units, the
    same unit under two keys differing in one bit, and successive rows uncorrelated."""
    n = 2**20
    mask = dropout_ops.keep_mask((n,), (12345, 678910), rate)
    sd = np.sqrt(rate * (1 - rate) / n)
    assert abs(mask.mean() - (1 - rate)) < 5 * sd
    other = dropout_ops.keep_mask((n,), (12345 ^ 1, 678910), rate)
    third = dropout_ops.keep_mask((n,), (12345, 678910 ^ 1), rate)
    for a, b in [(mask[:-1], mask[1:]), (mask, other), (mask, third),
                 (mask[:-1024], mask[1024:])]:
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / np.sqrt(n)


def test_a_seeded_layer_draws_the_same_masks_on_numpy_and_numba():
    x = np.ones((16, 8, 8, 4), np.float32)
    outs = []
    for backend in ("numpy", "numba"):
        mc.backend.set_backend(backend)
        layer = mc.layers.Dropout(0.3, seed=42)
        outs.append([layer(x, training=True) for _ in range(3)])
    for a, b in zip(*outs):
        assert np.array_equal(a, b)
    assert not np.array_equal(outs[0][0], outs[0][1])  # a new mask every step
