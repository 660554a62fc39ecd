"""What the tests of the numba backend's other convolution paths (direct, Winograd)
share: random layer arrays and the comparison of one pass on two paths."""
import numpy as np


def layer_arrays(rng, n, h, wd, c, f, kh, kw, dtype, data_format, with_bias):
    """x (in ``data_format``), w (kh, kw, c, f) and b (or None), standard normal."""
    shape = (n, h, wd, c) if data_format == "channels_last" else (n, c, h, wd)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((kh, kw, c, f)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if with_bias else None
    return x, w, b


def assert_passes_agree(got, want, tol):
    """(y, dx, dw, db) of two paths agree to ``tol`` times each array's largest value
    (at least 1); a gradient one path skips (None) the other skips too."""
    for name, d, g in zip(("y", "dx", "dw", "db"), got[:4], want[:4]):
        if g is None:
            assert d is None, name
            continue
        assert d.shape == g.shape and d.dtype == g.dtype, name
        scale = max(1.0, float(np.abs(g).max()))
        np.testing.assert_allclose(d, g, rtol=0, atol=tol * scale, err_msg=name)
