"""Pictures of what a network computes: training curves, filters, feature maps, a
confusion matrix, and the arithmetic of a convolution (padding, strides, im2col).

Needs matplotlib (``pip install "minicnn[plot]"``). Every function returns the
matplotlib Figure and, given ``path``, also writes it there as a PNG. The backend is
matplotlib's own choice -- Agg by itself on a machine without a display, the inline
one in Jupyter -- and is never changed here: switching a running notebook to Agg (as
an earlier version did wherever DISPLAY was unset: macOS, Windows, JupyterHub, Colab)
hides every figure.

    >>> from minicnn import plot
    >>> plot.conv_arithmetic(5, 3, strides=2, padding="same", path="same.png")
"""
import os

import numpy as np

from .backend import to_host
from .shapes import normalize_padding, normalize_tuple, resolve_padding


def _pyplot():
    """matplotlib's pyplot, its backend as matplotlib chose it (never changed here)."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("minicnn.plot needs matplotlib, which is not installed: "
                          "pip install 'minicnn[plot]' (or pip install matplotlib)") from None
    return plt


def _finish(fig, path):
    if fig.get_layout_engine() is None:  # a figure with a colour bar lays itself out
        fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
    return fig


# ---------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------
def training_curves(history, path=None):
    """Loss and every metric per epoch from ``fit``'s History (or its ``.history``
    dict), training and validation side by side, on integer epoch ticks."""
    from matplotlib.ticker import MaxNLocator
    plt = _pyplot()
    logs = getattr(history, "history", history)
    keys = sorted((k for k in logs if not k.startswith("val_")), key=lambda k: k != "loss")
    if not keys:
        raise ValueError(f"training_curves: the history has no values. Received keys: "
                         f"{sorted(logs)}")
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = np.arange(1, len(logs[key]) + 1)
        ax.plot(epochs, logs[key], "o-", label=f"training {key}")
        if f"val_{key}" in logs:
            ax.plot(epochs, logs[f"val_{key}"], "s--", label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, path)


def confusion_matrix(y_true, y_pred, class_names=None, path=None):
    """Counts of (true class, predicted class); ``y_pred`` may be class indices or
    the model's probabilities (their argmax is taken)."""
    plt = _pyplot()
    y_true = np.asarray(to_host(y_true))
    y_pred = np.asarray(to_host(y_pred))
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(axis=1)
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        y_true = y_true.argmax(axis=1)
    y_true, y_pred = y_true.reshape(-1).astype(int), y_pred.reshape(-1).astype(int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"confusion_matrix: {y_true.size} true labels but {y_pred.size} "
                         f"predictions")
    k = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    if class_names is not None:
        k = max(k, len(class_names))
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * k, 1.0 + 0.5 * k))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({np.trace(counts)} of {counts.sum()} right)")
    return _finish(fig, path)


# ---------------------------------------------------------------------------------
# what the layers learned and compute
# ---------------------------------------------------------------------------------
def _grid(plt, images, titles, suptitle, cmap="gray", limit=None):
    """Images in rows of up to 8; ``limit``: one colour scale -limit..limit for all of
    them, shown by a colour bar (each image scales to its own range otherwise)."""
    n = len(images)
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols + 0.4 + (limit is not None),
                                                  1.4 * rows + 0.6), squeeze=False,
                             layout=None if limit is None else "constrained")
    for ax in axes.flat:
        ax.axis("off")
    scale = {} if limit is None else {"vmin": -limit, "vmax": limit}
    for ax, image, title in zip(axes.flat, images, titles):
        shown = ax.imshow(image, cmap=cmap, interpolation="nearest", **scale)
        ax.set_title(title, fontsize=7)
    fig.suptitle(suptitle, fontsize=9)
    if limit is not None and n:
        fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    return fig


def filters(layer, path=None):
    """A Conv2D layer's kernels as images: one per (filter, input channel), all on one
    colour scale symmetric about zero (white = 0, red positive, blue negative; the
    colour bar gives the values), so colour shows sign and size across filters."""
    plt = _pyplot()
    if not layer.built or layer._weight("kernel") is None or \
            np.ndim(layer._weight("kernel")) != 4:
        raise ValueError(f"filters: expected a built Conv2D layer, received "
                         f"{type(layer).__name__} '{getattr(layer, 'name', '?')}'")
    kernel = np.asarray(to_host(layer._weight("kernel")), dtype=np.float64)
    kh, kw, c, f = kernel.shape
    images, titles = [], []
    for j in range(f):
        for ch in range(c):
            images.append(kernel[:, :, ch, j])
            titles.append(f"filter {j}" + (f", ch {ch}" if c > 1 else ""))
    return _finish(_grid(plt, images, titles, f"{layer.name}: {f} filters of {kh}x{kw}x{c}",
                         cmap="RdBu_r", limit=float(np.abs(kernel).max()) or 1.0), path)


def feature_maps(model, x, layers=None, max_channels=8, path=None):
    """What chosen layers (names or indices; default: every Conv2D and pooling layer)
    output for one input image ``x`` ((H, W, C), or a batch whose first is used):
    up to ``max_channels`` channels per layer, one row per layer."""
    plt = _pyplot()
    x = np.asarray(to_host(x))
    if x.ndim == len(model._sample_in or ()):
        x = x[None]
    x = x[:1]
    wanted = layers
    if wanted is None:
        wanted = [l.name for l in model.layers
                  if type(l).__name__ in ("Conv2D", "MaxPooling2D", "AveragePooling2D",
                                          "MinPooling2D")]
    wanted = [model.layers[w].name if isinstance(w, int) else w for w in wanted]
    unknown = [w for w in wanted if w not in [l.name for l in model.layers]]
    if unknown:
        raise ValueError(f"feature_maps: no layer named {unknown} in {type(model).__name__} "
                         f"'{model.name}'; its layers are {[l.name for l in model.layers]}")
    if not model._single_input:
        raise ValueError(f"feature_maps: {type(model).__name__} '{model.name}' has several "
                         f"inputs; pass a feature-extraction model of one")
    if not model.built:
        model.build(x.shape[1:])
    maps = {}

    def seen(node, out):  # each layer's output on the graph's forward walk (first call)
        if node.layer.name in wanted and node.layer.name not in maps:
            maps[node.layer.name] = np.asarray(to_host(out))[0]
    model._graph.forward([x], training=False, observe=seen)
    model._release_caches()
    for name in wanted:  # an input layer's output is the input
        maps.setdefault(name, x[0])
    rows = len(wanted)
    cols = max_channels + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows + 0.4), squeeze=False)
    image = x[0] if x.shape[-1] in (1, 3) else x[0, ..., :1]
    for r, name in enumerate(wanted):
        for ax in axes[r]:
            ax.axis("off")
        if r == 0:
            axes[r][0].imshow(image.squeeze(), cmap="gray")
            axes[r][0].set_title("input", fontsize=7)
        fmap = maps[name]
        channels_first = getattr(model.layers[[l.name for l in model.layers].index(name)],
                                 "data_format", "channels_last") == "channels_first"
        if fmap.ndim == 3 and channels_first:
            fmap = fmap.transpose(1, 2, 0)
        fmap = fmap if fmap.ndim == 3 else fmap.reshape(1, -1, 1)
        for ch in range(min(max_channels, fmap.shape[-1])):
            ax = axes[r][ch + 1]
            ax.imshow(fmap[:, :, ch], cmap="viridis", interpolation="nearest")
            ax.set_title(f"{name} [{ch}]" if ch == 0 else f"[{ch}]", fontsize=7)
    fig.suptitle(f"feature maps of one input through {type(model).__name__} '{model.name}'",
                 fontsize=9)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------
# the arithmetic of a convolution
# ---------------------------------------------------------------------------------
def conv_arithmetic(input_size, kernel_size, strides=1, padding="valid", path=None):
    """The input (blue) with its padding (gray), the first and the last window, and
    the output grid, computed with the library's own padding rules: ``same`` puts the
    odd pixel at the bottom/right as TensorFlow does, ``full`` pads k - 1 everywhere."""
    from matplotlib.patches import Rectangle
    plt = _pyplot()
    (h, w) = normalize_tuple(input_size, 2, "input_size", "conv_arithmetic")
    (kh, kw) = normalize_tuple(kernel_size, 2, "kernel_size", "conv_arithmetic")
    (sh, sw) = normalize_tuple(strides, 2, "strides", "conv_arithmetic")
    padding = normalize_padding(padding, owner="conv_arithmetic")
    ((top, bottom), (left, right)), (oh, ow) = resolve_padding((h, w), (kh, kw), (sh, sw),
                                                               padding)
    hp, wp = h + top + bottom, w + left + right
    fig, (ax_in, ax_out) = plt.subplots(1, 2, figsize=(4 + 0.35 * (wp + ow), 1.2 + 0.4 * hp),
                                        gridspec_kw={"width_ratios": [wp, max(ow, 1)]})
    for r in range(hp):
        for q in range(wp):
            real = top <= r < top + h and left <= q < left + w
            ax_in.add_patch(Rectangle((q, r), 1, 1, facecolor="#9ecae1" if real else "#eeeeee",
                                      edgecolor="gray", hatch=None if real else "//"))
    for (i, j), color in (((0, 0), "red"), ((oh - 1, ow - 1), "darkorange")):
        ax_in.add_patch(Rectangle((j * sw, i * sh), kw, kh, fill=False, edgecolor=color,
                                  linewidth=2.5))
    ax_in.set_xlim(0, wp)
    ax_in.set_ylim(hp, 0)
    ax_in.set_aspect("equal")
    ax_in.set_xticks([])
    ax_in.set_yticks([])
    ax_in.set_title(f"input {h}x{w}, padding '{padding}': top {top}, bottom {bottom}, "
                    f"left {left}, right {right}", fontsize=8)
    for i in range(oh):
        for j in range(ow):
            face = "red" if (i, j) == (0, 0) else "darkorange" if (i, j) == (oh - 1, ow - 1) \
                else "#c7e9c0"
            ax_out.add_patch(Rectangle((j, i), 1, 1, facecolor=face, edgecolor="gray",
                                       alpha=0.6 if face != "#c7e9c0" else 1))
    ax_out.set_xlim(0, max(ow, 1))
    ax_out.set_ylim(max(oh, 1), 0)
    ax_out.set_aspect("equal")
    ax_out.set_xticks([])
    ax_out.set_yticks([])
    formula = {"valid": "(H - K) // S + 1", "same": "ceil(H / S)",
               "full": "(H + K - 2) // S + 1"}[padding]
    ax_out.set_title(f"output {oh}x{ow} = {formula}", fontsize=8)
    fig.suptitle(f"{kh}x{kw} kernel, strides {sh}x{sw}: red = first window, "
                 f"orange = last", fontsize=9)
    return _finish(fig, path)


def im2col_matrix(x, kernel_size, strides=1, padding="valid", path=None):
    """A small single-channel image ``x`` (H, W) beside its im2col matrix: one row per
    window (OH*OW rows), one column per kernel cell (KH*KW), each row in the colour of
    the window outlined on the image, so the convolution becomes rows @ kernel."""
    from matplotlib.patches import Rectangle
    from .ops.im2col import im2col
    plt = _pyplot()
    x = np.asarray(to_host(x), dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"im2col_matrix: expected one (H, W) image. Received shape {x.shape}")
    k = normalize_tuple(kernel_size, 2, "kernel_size", "im2col_matrix")
    s = normalize_tuple(strides, 2, "strides", "im2col_matrix")
    padding = normalize_padding(padding, owner="im2col_matrix")
    pads, (oh, ow) = resolve_padding(x.shape, k, s, padding)
    col = im2col(x[None, :, :, None], k, s, pads, (oh, ow)).reshape(oh * ow, k[0] * k[1])
    colors = plt.get_cmap("tab10")(np.arange(oh * ow) % 10)
    h, w = x.shape
    (top, _), (left, _) = pads
    fig, (ax_x, ax_c) = plt.subplots(
        1, 2, figsize=(3 + 0.45 * (w + k[0] * k[1]), 1.5 + 0.3 * max(h, oh * ow)),
        gridspec_kw={"width_ratios": [w + 1, k[0] * k[1]]})
    ax_x.imshow(x, cmap="gray_r", extent=(0, w, h, 0), alpha=0.25)
    for r in range(h):
        for q in range(w):
            ax_x.text(q + 0.5, r + 0.5, f"{x[r, q]:g}", ha="center", va="center", fontsize=7)
    for n, (i, j) in enumerate((i, j) for i in range(oh) for j in range(ow)):
        inset = 0.06 * (n % 4)
        ax_x.add_patch(Rectangle((j * s[1] - left + inset, i * s[0] - top + inset),
                                 k[1] - 2 * inset, k[0] - 2 * inset, fill=False,
                                 edgecolor=colors[n], linewidth=2))
    ax_x.set_xlim(-left - 0.2, w + 0.2)
    ax_x.set_ylim(h + 0.2, -top - 0.2)
    ax_x.set_title(f"image {h}x{w}, {k[0]}x{k[1]} windows", fontsize=8)
    ax_x.axis("off")
    for n in range(oh * ow):
        for m in range(k[0] * k[1]):
            ax_c.add_patch(Rectangle((m, n), 1, 1, facecolor=colors[n], alpha=0.35,
                                     edgecolor="white"))
            ax_c.text(m + 0.5, n + 0.5, f"{col[n, m]:g}", ha="center", va="center",
                      fontsize=7)
    ax_c.set_xlim(0, k[0] * k[1])
    ax_c.set_ylim(oh * ow, 0)
    ax_c.set_xticks(np.arange(k[0] * k[1]) + 0.5,
                    [f"{a},{b}" for a in range(k[0]) for b in range(k[1])], fontsize=6)
    ax_c.set_yticks(np.arange(oh * ow) + 0.5,
                    [f"({i},{j})" for i in range(oh) for j in range(ow)], fontsize=6)
    ax_c.set_title(f"im2col: {oh * ow} windows x {k[0] * k[1]} cells", fontsize=8)
    return _finish(fig, path)
