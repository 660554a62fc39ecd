"""The loop oracle: slow, loop-by-loop convolution and pooling, the tests' ground truth
and the teaching text. (Not the "reference" backend, which runs the kernels as loops
but keeps NumPy's matrix products: ``minicnn.kernels.reference``.)

Nothing here is clever. Every output value is computed by visiting its window
cell by cell, and every gradient by walking the same windows and asking "which
inputs did this output touch, and by how much?". The fast im2col versions in
``minicnn.ops`` must agree with these, and the tests check that they do.

All arrays are channels_last: x (N, H, W, C), kernel w (KH, KW, C, F).
Padding is given by name ('valid', 'same', 'full') and resolved by the same
``minicnn.shapes.resolve_padding`` the fast path uses, so the two can only
disagree in the arithmetic, which is what the tests compare.
"""
import numpy as np

from .shapes import resolve_padding


def _padded(x, pads, value):
    """Step 1 of every op: surround the image with ``value`` (see resolve_padding)."""
    (top, bottom), (left, right) = pads
    n, h, w, c = x.shape
    xpad = np.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    xpad[:, top:top + h, left:left + w, :] = x
    return xpad


def conv2d_forward_loop(x, w, b, strides, padding):
    """y[n, i, j, f] = b[f] + sum over the window of xpad * w[..., f]."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    sh, sw = strides
    pads, (oh, ow) = resolve_padding((h, wd), (kh, kw), strides, padding)
    xpad = _padded(x, pads, 0.0)
    y = np.zeros((n, oh, ow, f), dtype=x.dtype)
    for s in range(n):                      # every image
        for i in range(oh):                 # every output row
            for j in range(ow):             # every output column
                for k in range(f):          # every filter
                    total = 0.0 if b is None else b[k]
                    for a in range(kh):     # every cell of the window
                        for bb in range(kw):
                            for ch in range(c):
                                total += xpad[s, i * sh + a, j * sw + bb, ch] * w[a, bb, ch, k]
                    y[s, i, j, k] = total
    return y


def conv2d_backward_loop(dy, x, w, strides, padding):
    """Returns (dx, dw, db) for loss = sum(y * dy).

    Output y[s, i, j, k] used input xpad[s, i*sh+a, j*sw+bb, ch] with weight
    w[a, bb, ch, k]. So its gradient dy[s, i, j, k] flows
      - to that input, times the weight, and
      - to that weight, times the input,
    and to the bias k unchanged. Summing over every output gives the gradients.
    """
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    sh, sw = strides
    pads, (oh, ow) = resolve_padding((h, wd), (kh, kw), strides, padding)
    xpad = _padded(x, pads, 0.0)
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    db = np.zeros(f, dtype=w.dtype)
    for s in range(n):
        for i in range(oh):
            for j in range(ow):
                for k in range(f):
                    g = dy[s, i, j, k]
                    db[k] += g
                    for a in range(kh):
                        for bb in range(kw):
                            for ch in range(c):
                                r, col = i * sh + a, j * sw + bb
                                dxpad[s, r, col, ch] += g * w[a, bb, ch, k]
                                dw[a, bb, ch, k] += g * xpad[s, r, col, ch]
    # The padding was a constant: its gradient is thrown away.
    (top, _), (left, _) = pads
    dx = dxpad[:, top:top + h, left:left + wd, :]
    return dx, dw, db


def _window_cells(i, j, kh, kw, sh, sw):
    """The padded-image cells of window (i, j), in row-major order."""
    return [(i * sh + a, j * sw + bb) for a in range(kh) for bb in range(kw)]


def pool2d_forward_loop(x, pool_size, strides, padding, mode):
    """mode 'max' / 'min': the extreme real cell of each window; 'avg': the mean of
    the real (unpadded) cells. Padded cells are skipped, never compared or counted."""
    n, h, wd, c = x.shape
    kh, kw = pool_size
    sh, sw = strides
    pads, (oh, ow) = resolve_padding((h, wd), (kh, kw), strides, padding)
    (top, _), (left, _) = pads
    y = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for s in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    values = [x[s, r - top, col - left, ch]
                              for r, col in _window_cells(i, j, kh, kw, sh, sw)
                              if 0 <= r - top < h and 0 <= col - left < wd]
                    if mode == "max":
                        y[s, i, j, ch] = max(values)
                    elif mode == "min":
                        y[s, i, j, ch] = min(values)
                    else:
                        y[s, i, j, ch] = sum(values) / len(values)
    return y


def pool2d_backward_loop(dy, x, pool_size, strides, padding, mode):
    """Max/min: each window's gradient goes to its *first* extreme real cell in
    row-major order (Keras's rule for ties). Avg: split evenly over the real cells.
    Overlapping windows add up."""
    n, h, wd, c = x.shape
    kh, kw = pool_size
    sh, sw = strides
    pads, (oh, ow) = resolve_padding((h, wd), (kh, kw), strides, padding)
    (top, _), (left, _) = pads
    dx = np.zeros_like(x)
    for s in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    cells = [(r - top, col - left)
                             for r, col in _window_cells(i, j, kh, kw, sh, sw)
                             if 0 <= r - top < h and 0 <= col - left < wd]
                    g = dy[s, i, j, ch]
                    if mode == "avg":
                        for r, col in cells:
                            dx[s, r, col, ch] += g / len(cells)
                        continue
                    best = cells[0]
                    for r, col in cells[1:]:
                        v, bv = x[s, r, col, ch], x[s, best[0], best[1], ch]
                        if (mode == "max" and v > bv) or (mode == "min" and v < bv):
                            best = (r, col)  # strictly better: ties keep the first
                    dx[s, best[0], best[1], ch] += g
    return dx
