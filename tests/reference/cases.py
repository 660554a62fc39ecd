"""The Keras cross-check cases: what is compared, how each side builds it, and how close
minicnn must come. Shared by ``generate.py`` (which runs Keras and stores fixtures),
``tests/test_keras_reference.py`` (which compares minicnn with the stored fixtures) and
``tests/test_keras_live.py`` (which runs Keras live).

A *case* is a JSON-serializable dict: ``id`` (also the fixture's file name),
``family`` (the group the summary reports), ``kind`` (which runner handles it),
``seed`` (for its input arrays) and kind-specific settings. Layer arguments are
given once, with Keras's names, and passed unchanged to both libraries.

- ``make_inputs(case)``: the input arrays (numpy, seeded; float32 data, int32 labels).
- ``keras_expected(case, inputs)``: Keras 3's results (needs keras with the JAX
  backend; keras is imported only inside the functions that need it).
- ``check_case(case, data, checker)``: runs minicnn on ``data`` (inputs + Keras's
  results) and compares every result with ``checker.close`` at ``TOLERANCES``.

Gradients are those of ``sum(y * dy)`` (for losses, of the loss), computed in Keras
with ``jax.value_and_grad`` over ``layer.stateless_call``. Merge layers (kind
``merge``: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) take a
list of inputs ``x0, x1, ...`` and give one gradient ``dx0, dx1, ...`` per input.
Loss cases may carry ``loss_args`` (``from_logits``), given to both libraries.
Cases whose point is a tie or a kink (tied maxima, inputs exactly on a ReLU's
threshold or max_value) check that their inputs really hold one before comparing.
Oracles for minicnn's extensions: ``padding="full"`` is Keras's 'valid' Conv2D on the
input explicitly zero-padded by ``k - 1`` on every side (``dx`` = the padded input's
gradient, cropped); MinPooling2D is ``-MaxPooling2D(-x)`` (by the chain rule ``dx`` is
max pooling's input gradient at ``-x`` for the same ``dy``).

Model cases (the notebooks' models from examples/, plus two small models defined
here: ``mini_alexnet``, examples/alexnet.py's layer pattern with batch norm at a
fixture-friendly size, and ``fit_convnet`` for ``model.fit``) do not store their
initial weights (model A alone has 2M parameters): ``model_initial_weights``
regenerates them from the case's seed with numpy, and the fixture keeps checksums of
them so that a change in numpy's generator shows up as a clear error rather than as a
mismatch. Weights with more than ``FULL_LIMIT`` entries after a step (model A's and
model C's first Dense kernels) are stored as a fixed sample of entries plus the row
and column means of the update.
"""
import importlib.util
import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
VERSIONS_FILE = DATA_DIR / "VERSIONS.json"
REPO_ROOT = HERE.parents[1]
ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")
F32 = np.float32

# ======================================================================================
# Tolerances: (rtol, atol), elementwise |minicnn - keras| <= atol + rtol * |keras|.
#
# Both libraries compute in float32 (unit roundoff u = 6e-8) but sum in different
# orders (im2col + BLAS matmul here, XLA's convolution and reductions in Keras), so
# results agree to a few ulps times the length of the sums, not bit for bit. Inputs,
# weights and dy are O(1) by construction, so absolute tolerances are meaningful.
# Observed errors use at most 2-30% of these bounds (column "tol used" of
# tests/.keras_reference_summary.txt); a real bug (wrong padding split, tie rule,
# variance, update rule) gives errors of the order of the values themselves.
# ======================================================================================
TOLERANCES = {
    # Conv2D: y sums kh*kw*C <= 363 products, dK sums N*OH*OW products, dx sums
    # kh*kw*F / (sh*sw) products; with O(1) terms float32 sums drift by ~sqrt(n)*u*|terms|
    # ~1e-6 (observed <= 2.2e-6 on values up to 15). tanh/sigmoid/softmax do not amplify.
    "conv2d": {"*": (1e-5, 1e-5)},
    "conv2d_full": {"*": (1e-5, 1e-5)},
    # Max/min pooling select an input value: no arithmetic, so y must be exact (a wrong
    # winner, e.g. a tie rule difference, is an O(1) error). dx routes each window's dy
    # to one cell, where overlapping windows add up (<= 9 terms, in another order than
    # XLA's): a few ulps.
    "max_pooling": {"*": (1e-6, 1e-6), "y": (0.0, 0.0)},
    "min_pooling": {"*": (1e-6, 1e-6), "y": (0.0, 0.0)},
    # Average pooling: a sum of <= 9 values and one division: a few ulps.
    "avg_pooling": {"*": (1e-6, 1e-6)},
    # Dense: y and dx sum <= 7 products, dW/db sum over the batch: a few ulps; the
    # exp in sigmoid/softmax/tanh differs by ~1 ulp between numpy and XLA.
    "dense": {"*": (1e-6, 1e-6)},
    "activation": {"*": (1e-6, 1e-6)},
    # Flatten and inference Dropout move values without arithmetic: exact.
    "flatten": {"*": (0.0, 0.0)},
    "dropout": {"*": (0.0, 0.0)},
    # BatchNormalization: the mean and variance are reductions in different orders, and
    # 1/sqrt(var + eps) amplifies their error; dx is a difference of terms of size
    # |dy| * gamma/sigma (up to ~4 here) that largely cancel. 1e-5 relative to O(1)
    # values covers ~100 ulps of the inputs' scale (observed worst 1.7e-6 on dgamma ~6).
    "batchnorm_train": {"*": (1e-5, 1e-5)},
    "batchnorm_inference": {"*": (1e-5, 1e-5)},
    "batchnorm_moving": {"*": (1e-5, 1e-5)},
    # Losses: a log and a mean of <= 48 values: ~1e-7 relative; the gradient w.r.t. p
    # has entries up to (1 - 1/p)/N ~ 1e4 near p = 1e-5, hence a relative tolerance.
    "loss_cce": {"*": (1e-6, 1e-7)},
    "loss_scce": {"*": (1e-6, 1e-7)},
    "loss_mse": {"*": (1e-6, 1e-7)},
    # Softmax + cross-entropy at the logits: (p - y)/N with p from exp: ~1 ulp of 1/N.
    # Keras's zero rows (clipping active) must be exactly zero in the unfused path.
    "fused_softmax_ce": {"*": (1e-6, 1e-7)},
    # Optimizers, 3 steps of one or two small Dense layers: weights are O(1), and an
    # update differs only through the gradient's rounding (~1e-7 relative) times lr
    # (<= 0.1): 1e-6 absolute is ~10 ulps of the weights. Adam amplifies the rounding
    # of a gradient near 0 (slope lr*sqrt(1-b2)/eps, see below), but here gradients are
    # O(0.1), or (tiny-grads) ~1e-8 with ~1e-7 *relative* rounding, so it stays small.
    "optimizer_sgd": {"*": (1e-6, 1e-6), "loss": (1e-6, 1e-6)},
    "optimizer_adam": {"*": (1e-6, 1e-6), "loss": (1e-6, 1e-6)},
    # Whole models: predict goes through up to 9 layers; the softmax outputs are ~0.1
    # and errors compound to ~1e-7: 1e-6 absolute. One SGD step at lr 0.05 moves a
    # weight by lr*g. Float32 gradients are accurate to ~1e-7 absolute in the tutorial
    # models but only to ~5e-5 in mini_alexnet, where batch norm's backward amplifies
    # rounding (measured against float64: minicnn 5.9e-5, Keras 3.5e-5, on gradients
    # up to 3.4): lr * 6e-5 = 3e-6, hence 1e-5 (0.2% of the largest updates, ~0.05).
    # One Adam step moves a weight by lr*sqrt(1-b2)*g/(sqrt(1-b2)|g| + eps), i.e. by
    # ~lr = 1e-3 unless |g| is tiny; near g = 0 its slope is lr*sqrt(1-b2)/eps = 316, so
    # the float32 rounding of a gradient that nearly cancels (~1e-7 absolute in both
    # libraries, measured against a float64 minicnn run) can move a weight by up to
    # 3e-5 (observed: 3.1e-6, LeNet-5 conv kernel entry with g = -1.5e-7 where minicnn
    # has -1.40e-7, Keras -1.50e-7, float64 -1.48e-7). 3e-5 is 3% of one Adam step;
    # an error in the update rule moves weights by O(lr).
    "model_predict": {"*": (1e-5, 1e-6)},
    "model_sgd_step": {"*": (1e-5, 1e-5), "loss": (1e-6, 1e-6)},
    "model_adam_step": {"*": (1e-5, 3e-5), "loss": (1e-6, 1e-6)},
    # fit: 8 steps of a small conv net (momentum SGD at lr 0.1 / Adam at lr 0.01);
    # rounding differences of ~1e-7 per step compound over the steps: 1e-5 on the
    # weights (O(0.3)) and 1e-5 relative on the history (losses ~2.3; accuracies are
    # multiples of 1/14 or 1/6 and so must agree exactly at this tolerance).
    "model_fit": {"*": (1e-5, 1e-5)},
    # ---- layers and losses added later (same reasoning, per kind of arithmetic) ----
    # GlobalAveragePooling2D: a mean of H*W <= 20 values (numpy's pairwise sum vs XLA's
    # reduction) and one division; dx is dy / (H*W): a few ulps.
    "global_avg_pooling": {"*": (1e-6, 1e-6)},
    # GlobalMaxPooling2D selects a value (y exact). dx is dy / k at the k cells that hold
    # the maximum (k = 1 without ties): in both libraries one float32 division of the
    # same operands (JAX's reduce_max gradient divides by the count of maxima), so it
    # must be exact too; a different tie rule (first cell only) is an O(dy) error.
    "global_max_pooling": {"*": (0.0, 0.0)},
    # Zero padding, cropping, reshape and identity only move values (dx moves dy back,
    # zeros where nothing came from): exact.
    "zero_padding": {"*": (0.0, 0.0)},
    "cropping": {"*": (0.0, 0.0)},
    "reshape": {"*": (0.0, 0.0)},
    "identity": {"*": (0.0, 0.0)},
    # Nearest upsampling copies values (y exact); dx sums dy over an sh x sw <= 6 block,
    # in another order than XLA's reduction: a few ulps.
    "upsampling": {"*": (1e-6, 1e-6), "y": (0.0, 0.0)},
    # Rescaling: x * scale + offset, which XLA may fuse into one FMA (one rounding
    # instead of two): ~1 ulp of O(1) values.
    "rescaling": {"*": (1e-6, 1e-6)},
    # Softmax (any axis), ReLU (max_value, negative_slope, threshold), LeakyReLU, ELU
    # layers: as "activation": an exp or one product per entry, ~1 ulp; a different
    # slope at a kink (inputs put exactly on 0, the threshold and max_value) is O(dy).
    "activation_layers": {"*": (1e-6, 1e-6)},
    # Add, Subtract, Multiply, Average of 2-3 inputs: <= 2 roundings per entry, and
    # Multiply's dx_i (dy times the other inputs) is a product in another order than
    # JAX's transposed chain: ~1 ulp of O(1) values.
    "merge": {"*": (1e-6, 1e-6)},
    # Maximum/Minimum select values (y exact) and route dy times 1, 1/2 or 1/4 (JAX's
    # pairwise tie rule): exact in float32; another tie rule is an O(dy) error.
    "merge_extreme": {"*": (0.0, 0.0)},
    # Concatenate moves values: exact.
    "concatenate": {"*": (0.0, 0.0)},
    # Binary cross-entropy, as the other losses: logs, a mean of <= 48 values; the
    # gradient w.r.t. p reaches 1/(1e-7 * size) ~ 4e5 at the clip bound, hence relative.
    # From logits: softplus/sigmoid terms, (sigmoid(z) - y)/size: ~1 ulp of 1/size.
    "loss_bce": {"*": (1e-6, 1e-7)},
}


def tolerance(family, quantity):
    table = TOLERANCES[family]
    return table.get(quantity, table["*"])


# ======================================================================================
# Shapes, computed here from the Keras formulas (not by either library)
# ======================================================================================
def _out_len(n, k, s, padding):
    if padding == "valid":
        return (n - k) // s + 1
    if padding == "same":
        return -(-n // s)
    if padding == "full":
        return (n + k - 2) // s + 1
    raise ValueError(padding)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _channel_axis(case):
    return 1 if case["args"].get("data_format") == "channels_first" else -1


def layer_weight_shapes(case):
    """Shapes of the layer's weights, in Keras's get_weights() order."""
    cls, a, shp = case["layer"], case["args"], case["input_shape"]
    if cls == "Conv2D":
        kh, kw = _pair(a["kernel_size"])
        c = shp[_channel_axis(case)]
        return [(kh, kw, c, a["filters"])] + ([(a["filters"],)] if a.get("use_bias", True)
                                             else [])
    if cls == "Dense":
        return [(shp[-1], a["units"])] + ([(a["units"],)] if a.get("use_bias", True) else [])
    if cls == "BatchNormalization":
        c = shp[a.get("axis", -1)]
        n = int(a.get("scale", True)) + int(a.get("center", True))
        return [(c,)] * (n + 2)
    return []


def layer_weight_kinds(case):
    if case["layer"] == "BatchNormalization":
        a = case["args"]
        return ((["gamma"] if a.get("scale", True) else [])
                + (["beta"] if a.get("center", True) else []) + ["moving_mean", "moving_variance"])
    return ["kernel", "bias"][:len(layer_weight_shapes(case))]


def layer_output_shape(case):
    cls, a, shp = case["layer"], case["args"], list(case["input_shape"])
    if cls in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "MinPooling2D"):
        conv = cls == "Conv2D"
        window = _pair(a["kernel_size"] if conv else a["pool_size"])
        strides = _pair(a.get("strides") or (1 if conv else window))
        padding = a.get("padding", "valid")
        cf = a.get("data_format") == "channels_first"
        hw = shp[2:4] if cf else shp[1:3]
        out = [_out_len(n, k, s, padding) for n, k, s in zip(hw, window, strides)]
        ch = a["filters"] if conv else shp[1 if cf else 3]
        return [shp[0], ch] + out if cf else [shp[0]] + out + [ch]
    if cls == "Dense":
        return shp[:-1] + [a["units"]]
    if cls == "Flatten":
        return [shp[0], math.prod(shp[1:])]
    cf = a.get("data_format") == "channels_first"
    hw_axes = (2, 3) if cf else (1, 2)
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        c = shp[1 if cf else 3]
        if not a.get("keepdims", False):
            return [shp[0], c]
        return [shp[0], c, 1, 1] if cf else [shp[0], 1, 1, c]
    if cls in ("ZeroPadding2D", "Cropping2D"):
        sign = 1 if cls == "ZeroPadding2D" else -1
        for axis, edges in zip(hw_axes, edge_pairs(a.get("padding", a.get("cropping")))):
            shp[axis] += sign * sum(edges)
        return shp
    if cls == "UpSampling2D":
        for axis, s in zip(hw_axes, _pair(a.get("size", 2))):
            shp[axis] *= s
        return shp
    if cls == "Reshape":
        target = list(a["target_shape"])
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            target[target.index(-1)] = math.prod(shp[1:]) // known
        assert math.prod(target) == math.prod(shp[1:]), (target, shp)
        return [shp[0]] + target
    return shp   # elementwise layers (Activation, Softmax, ReLU, ..., Rescaling, Identity)


def edge_pairs(value):
    """ZeroPadding2D's padding / Cropping2D's cropping in Keras's three forms (int,
    (symmetric_height, symmetric_width), ((top, bottom), (left, right))) ->
    ((top, bottom), (left, right))."""
    entries = (value, value) if isinstance(value, int) else value
    return tuple((e, e) if isinstance(e, int) else tuple(e) for e in entries)


def merge_output_shape(case):
    """The output shape of a merge case (Concatenate: the sizes on ``axis`` add up)."""
    shapes = [list(s) for s in case["input_shapes"]]
    if case["layer"] != "Concatenate":
        return shapes[0]
    axis = case["args"].get("axis", -1) % len(shapes[0])
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return out


# ======================================================================================
# Case definitions
# ======================================================================================
def _layer_case(family, name, layer, args, input_shape, seed, training=False, inputs="uniform",
                oracle="direct", keras_layer=None):
    case = {"id": f"{family}-{name}", "family": family, "kind": "layer", "seed": seed,
            "layer": layer, "args": args, "input_shape": list(input_shape),
            "training": training, "inputs": inputs, "oracle": oracle}
    if keras_layer:
        case["keras_layer"] = keras_layer
    return case


def _fmt_tag(data_format):
    return "cf" if data_format == "channels_first" else "cl"


def _spatial_shape(n, h, w, c, data_format):
    return [n, c, h, w] if data_format == "channels_first" else [n, h, w, c]


def _conv_cases():
    out = []
    rng = np.random.default_rng(1001)
    specs = []
    for i in range(36):
        padding = ("valid", "same")[i % 2]
        fmt = ("channels_last", "channels_first")[(i // 2) % 2]
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        use_bias = bool(rng.random() < 0.75)
        act = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
        c, f = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        h = int(rng.integers(kh if padding == "valid" else 1, kh + 8))
        w = int(rng.integers(kw if padding == "valid" else 1, kw + 8))
        specs.append((padding, (kh, kw), (sh, sw), fmt, use_bias, act, (2, h, w, c), f))
    # Fixed cases: AlexNet's 11x11 stride-4 first layer (both paddings and formats),
    # and the common 3x3 and 5x5 'same' convolutions.
    specs += [("valid", (11, 11), (4, 4), "channels_last", True, "relu", (2, 27, 27, 3), 4),
              ("same", (11, 11), (4, 4), "channels_first", True, "linear", (2, 23, 25, 3), 3),
              ("same", (3, 3), (1, 1), "channels_last", True, "relu", (2, 8, 8, 3), 4),
              ("same", (5, 5), (1, 1), "channels_last", True, "tanh", (2, 9, 9, 1), 3)]
    for i, (padding, k, s, fmt, use_bias, act, (n, h, w, c), f) in enumerate(specs):
        name = (f"{padding}-k{k[0]}x{k[1]}-s{s[0]}x{s[1]}-{_fmt_tag(fmt)}-"
                f"{'bias' if use_bias else 'nobias'}-{act}-{i:02d}")
        args = {"filters": f, "kernel_size": list(k), "strides": list(s), "padding": padding,
                "data_format": fmt, "use_bias": use_bias, "activation": act}
        out.append(_layer_case("conv2d", name, "Conv2D", args, _spatial_shape(n, h, w, c, fmt),
                               2000 + i))
    return out


def _conv_full_cases():
    out = []
    rng = np.random.default_rng(1002)
    for i in range(12):
        fmt = ("channels_last", "channels_first")[i % 2]
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        if i < 4:
            sh = sw = 1
        else:
            sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        use_bias = bool(rng.random() < 0.75)
        act = ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]
        c, f = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        name = (f"k{kh}x{kw}-s{sh}x{sw}-{_fmt_tag(fmt)}-{'bias' if use_bias else 'nobias'}-"
                f"{act}-{i:02d}")
        args = {"filters": f, "kernel_size": [kh, kw], "strides": [sh, sw], "padding": "full",
                "data_format": fmt, "use_bias": use_bias, "activation": act}
        out.append(_layer_case("conv2d_full", name, "Conv2D", args,
                               _spatial_shape(2, h, w, c, fmt), 3000 + i,
                               oracle="zero_pad_valid"))
    return out


def _pool_cases():
    out = []
    rng = np.random.default_rng(1003)
    families = {"max": ("max_pooling", "MaxPooling2D"), "avg": ("avg_pooling", "AveragePooling2D"),
                "min": ("min_pooling", "MinPooling2D")}
    specs = []
    for i in range(48):
        mode = ("max", "avg", "min")[i % 3]
        padding = ("valid", "same")[(i // 3) % 2]
        fmt = ("channels_last", "channels_first")[(i // 6) % 2]
        ph = int(rng.integers(2, 4))
        pw = ph if rng.random() < 0.7 else int(rng.integers(2, 4))
        if rng.random() < 0.3:
            strides = None
        else:
            sh = int(rng.integers(1, 4))
            sw = sh if rng.random() < 0.6 else int(rng.integers(1, 4))
            strides = [sh, sw]
        c = int(rng.integers(1, 4))
        h = int(rng.integers(ph if padding == "valid" else 1, ph + 8))
        w = int(rng.integers(pw if padding == "valid" else 1, pw + 8))
        specs.append((mode, padding, fmt, [ph, pw], strides, (2, h, w, c), "uniform"))
    # Ties: small-integer inputs, where Keras sends each window's dy to its first
    # maximal (minimal) cell in row-major order, and overlapping windows accumulate.
    specs += [("max", "valid", "channels_last", [3, 3], [2, 2], (2, 9, 9, 2), "ties"),
              ("max", "same", "channels_first", [2, 2], [1, 1], (2, 2, 7, 6), "ties"),
              ("max", "same", "channels_last", [3, 3], [2, 2], (2, 8, 7, 2), "ties"),
              ("min", "valid", "channels_last", [3, 3], [2, 2], (2, 9, 9, 2), "ties"),
              ("min", "same", "channels_first", [2, 3], [1, 2], (2, 2, 7, 6), "ties"),
              ("avg", "same", "channels_last", [3, 3], [2, 2], (2, 8, 7, 2), "ties"),
              # all inputs negative: 'same' padding must never win a max
              ("max", "same", "channels_last", [3, 3], [2, 2], (2, 6, 5, 2), "negative"),
              ("max", "same", "channels_first", [3, 2], [3, 3], (2, 2, 4, 7), "negative"),
              ("min", "same", "channels_last", [3, 3], [2, 2], (2, 6, 5, 2), "positive"),
              ("avg", "same", "channels_last", [3, 3], [2, 2], (2, 6, 5, 2), "negative")]
    for i, (mode, padding, fmt, pool, strides, (n, h, w, c), style) in enumerate(specs):
        family, cls = families[mode]
        s_tag = "none" if strides is None else f"{strides[0]}x{strides[1]}"
        name = (f"{padding}-p{pool[0]}x{pool[1]}-s{s_tag}-{_fmt_tag(fmt)}"
                f"{'' if style == 'uniform' else '-' + style}-{i:02d}")
        args = {"pool_size": pool, "strides": strides, "padding": padding, "data_format": fmt}
        out.append(_layer_case(family, name, cls, args, _spatial_shape(n, h, w, c, fmt),
                               4000 + i, inputs=style,
                               oracle="negated_max" if mode == "min" else "direct",
                               keras_layer="MaxPooling2D" if mode == "min" else None))
    return out


def _dense_cases():
    out = []
    i = 0
    for act in ACTIVATIONS:
        for use_bias in (True, False):
            out.append(_layer_case("dense", f"{act}-{'bias' if use_bias else 'nobias'}",
                                   "Dense", {"units": 5, "activation": act, "use_bias": use_bias},
                                   [4, 7], 5000 + i))
            i += 1
    out.append(_layer_case("dense", "relu-rank3", "Dense", {"units": 4, "activation": "relu"},
                           [3, 2, 6], 5000 + i))
    out.append(_layer_case("dense", "softmax-rank3", "Dense",
                           {"units": 3, "activation": "softmax"}, [3, 2, 6], 5000 + i + 1))
    return out


def _activation_cases():
    out = [_layer_case("activation", act, "Activation", {"activation": act}, [4, 7], 5100 + i)
           for i, act in enumerate(ACTIVATIONS)]
    out.append(_layer_case("activation", "softmax-rank4", "Activation", {"activation": "softmax"},
                           [2, 3, 4, 5], 5110))
    out.append(_layer_case("activation", "relu-rank4", "Activation", {"activation": "relu"},
                           [2, 3, 4, 5], 5111))
    # |x| from 1e-3 to 1e3: saturation, exp overflow if softmax were not shifted
    for i, act in enumerate(("tanh", "sigmoid", "softmax")):
        out.append(_layer_case("activation", f"{act}-wide-range", "Activation",
                               {"activation": act}, [4, 7], 5120 + i, inputs="wide"))
    # exact zeros and -0.0: relu'(0) = 0 in Keras
    out.append(_layer_case("activation", "relu-at-zero", "Activation", {"activation": "relu"},
                           [4, 7], 5130, inputs="zeros"))
    out.append(_layer_case("dense", "relu-at-zero", "Dense", {"units": 3, "activation": "relu",
                                                              "use_bias": False},
                           [4, 5], 5131, inputs="zeros"))
    return out


def _flatten_dropout_cases():
    return [
        _layer_case("flatten", "cl", "Flatten", {}, [2, 3, 4, 5], 5200),
        _layer_case("flatten", "cf", "Flatten", {"data_format": "channels_first"}, [2, 5, 3, 4],
                    5201),
        _layer_case("flatten", "rank3", "Flatten", {}, [2, 3, 4], 5202),
        _layer_case("dropout", "inference-rank2", "Dropout", {"rate": 0.3}, [4, 6], 5300),
        _layer_case("dropout", "inference-rank4", "Dropout", {"rate": 0.5}, [2, 3, 3, 2], 5301),
    ]


_BN_SPECS = [  # name, args, input shape
    ("dense", {}, [8, 5]),
    ("conv", {}, [4, 3, 3, 4]),
    ("conv-cf-axis1", {"axis": 1}, [4, 3, 3, 3]),
    ("dense-mom0.9-eps1e-5", {"momentum": 0.9, "epsilon": 1e-5}, [8, 6]),
    ("dense-nocenter", {"center": False}, [8, 4]),
    ("conv-noscale", {"scale": False}, [3, 2, 2, 5]),
    ("dense-noscale-nocenter", {"center": False, "scale": False}, [6, 3]),
    ("dense-batch1", {}, [1, 4]),   # zero variance: x - mean = 0, y = beta
]


def _bn_cases():
    out = []
    for i, (name, args, shape) in enumerate(_BN_SPECS):
        out.append(_layer_case("batchnorm_train", name, "BatchNormalization", args, shape,
                               6000 + i, training=True, inputs="bn"))
    for i, (name, args, shape) in enumerate(_BN_SPECS[:4] + _BN_SPECS[5:6]):
        out.append(_layer_case("batchnorm_inference", name, "BatchNormalization", args, shape,
                               6100 + i, training=False, inputs="bn"))
    for i, (name, args, shape) in enumerate([("dense", {}, [8, 5]),
                                             ("conv-mom0.9", {"momentum": 0.9}, [4, 3, 3, 4])]):
        out.append({"id": f"batchnorm_moving-{name}", "family": "batchnorm_moving",
                    "kind": "bn_moving", "seed": 6200 + i, "layer": "BatchNormalization",
                    "args": args, "input_shape": shape, "calls": 4})
    return out


def _loss_cases():
    def case(family, name, loss, shape, seed, **extra):
        return dict({"id": f"{family}-{name}", "family": family, "kind": "loss", "seed": seed,
                     "loss": loss, "shape": shape}, **extra)
    return [
        case("loss_cce", "edge-rows", "CategoricalCrossentropy", [8, 5], 7000, targets="edge"),
        case("loss_cce", "soft-labels", "CategoricalCrossentropy", [6, 4], 7001,
             targets="soft"),
        case("loss_cce", "rank3", "CategoricalCrossentropy", [2, 3, 4], 7002,
             targets="onehot"),
        case("loss_scce", "edge-rows-labels-n", "SparseCategoricalCrossentropy", [8, 5], 7010,
             targets="edge", label_shape="n"),
        case("loss_scce", "edge-rows-labels-n1", "SparseCategoricalCrossentropy", [8, 5], 7011,
             targets="edge", label_shape="n1"),
        case("loss_mse", "rank2", "MeanSquaredError", [4, 6], 7020, targets="real"),
        case("loss_mse", "rank4", "MeanSquaredError", [2, 3, 3, 2], 7021, targets="real"),
        {"id": "fused_softmax_ce-categorical", "family": "fused_softmax_ce", "kind": "fused",
         "seed": 7030, "loss": "CategoricalCrossentropy", "shape": [8, 4]},
        {"id": "fused_softmax_ce-sparse", "family": "fused_softmax_ce", "kind": "fused",
         "seed": 7031, "loss": "SparseCategoricalCrossentropy", "shape": [8, 4]},
    ]


def _optimizer_cases():
    def case(name, opt, args, loss, layers, steps=3, batch=8, features=5, x_scale=1.0):
        family = "optimizer_sgd" if opt == "SGD" else "optimizer_adam"
        return {"id": f"{family}-{name}", "family": family, "kind": "optimizer",
                "seed": 8000 + len(name) * 31 + sum(map(ord, name)), "optimizer": opt,
                "optimizer_args": args, "loss": loss, "layers": layers, "steps": steps,
                "batch": batch, "features": features, "x_scale": x_scale}
    softmax3 = [{"units": 3, "activation": "softmax"}]
    two_layer = [{"units": 4, "activation": "relu"}, {"units": 3, "activation": "softmax"}]
    return [
        case("plain", "SGD", {"learning_rate": 0.1}, "categorical_crossentropy", softmax3),
        case("momentum", "SGD", {"learning_rate": 0.1, "momentum": 0.9},
             "categorical_crossentropy", softmax3),
        case("nesterov", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
             "categorical_crossentropy", softmax3),
        case("defaults-sparse", "SGD", {}, "sparse_categorical_crossentropy", softmax3),
        case("momentum-mse-linear", "SGD", {"learning_rate": 0.05, "momentum": 0.5},
             "mean_squared_error", [{"units": 3, "activation": "linear"}]),
        case("nesterov-2layer", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
             "categorical_crossentropy", two_layer),
        case("defaults", "Adam", {}, "categorical_crossentropy", softmax3),
        case("lr0.01-custom-betas", "Adam",
             {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
             "sparse_categorical_crossentropy", softmax3),
        case("mse-tanh", "Adam", {"learning_rate": 0.01}, "mean_squared_error",
             [{"units": 2, "activation": "tanh"}]),
        case("2layer", "Adam", {"learning_rate": 0.01}, "categorical_crossentropy", two_layer),
        # Gradients ~1e-8..1e-7: Adam's epsilon (added to sqrt(v), not sqrt(v_hat))
        # dominates; the textbook form would differ by ~1e-3 after 3 steps.
        case("tiny-grads", "Adam", {}, "mean_squared_error",
             [{"units": 3, "activation": "linear", "use_bias": False}], x_scale=1e-6),
    ]


MODELS = {  # name: (example file, function, batch); None: defined below in this file
    "padding_demo": ("keras_tutorials.py", "padding_demo", 4),
    "strides_demo": ("keras_tutorials.py", "strides_demo", 8),
    "pooling_demo": ("keras_tutorials.py", "pooling_demo", 8),
    "lenet_cifar": ("keras_tutorials.py", "lenet_cifar", 4),
    "lenet5": ("lenet5.py", "lenet5", 8),
    # examples/alexnet.py's layer sequence (11x11/4 conv, 3x3/2 max pooling, batch norm
    # after convolutions and dense layers) at a size that fits in a fixture: batch
    # norm trained inside a model step, its moving statistics part of get_weights().
    "mini_alexnet": (None, "mini_alexnet", 6),
}
MODEL_STEPS = {  # step: (optimizer, args, loss)
    "predict": (None, None, None),
    "sgd": ("SGD", {"learning_rate": 0.05}, "categorical_crossentropy"),
    "adam": ("Adam", {"learning_rate": 0.001}, "sparse_categorical_crossentropy"),
}
FULL_LIMIT = 70_000   # model weights with more entries are stored reduced
SAMPLE_SIZE = 4096


# No Adam step for mini_alexnet: a bias feeding a batch norm (through relu and max
# pooling) has an exactly zero gradient on channels where the relu is active everywhere
# (BN removes the per-channel shift). In float32 such a gradient comes out as noise of
# ~1e-6 (minicnn 2.2e-6, Keras 3e-7, float64 1e-15), and Adam's first step turns any
# nonzero g into up to +-lr, so its sign is decided by rounding in every float32
# implementation. The SGD step (w - lr*g) checks the same gradients without that.
SKIPPED_MODEL_STEPS = {("mini_alexnet", "adam")}


def _model_cases():
    out = []
    for i, (model, (_, _, batch)) in enumerate(MODELS.items()):
        for step, (opt, args, loss) in MODEL_STEPS.items():
            if (model, step) in SKIPPED_MODEL_STEPS:
                continue
            family = {"predict": "model_predict", "sgd": "model_sgd_step",
                      "adam": "model_adam_step"}[step]
            out.append({"id": f"{family}-{model}", "family": family, "kind": "model",
                        "seed": 9000 + 10 * i, "model": model, "batch": batch, "step": step,
                        "optimizer": opt, "optimizer_args": args, "loss": loss})
    return out


FIT_CASES = [  # name, optimizer, args, loss
    ("sgd-momentum-cce", "SGD", {"learning_rate": 0.1, "momentum": 0.9},
     "categorical_crossentropy"),
    ("adam-scce", "Adam", {"learning_rate": 0.01}, "sparse_categorical_crossentropy"),
]


def _fit_cases():
    """model.fit: 2 epochs of batches 4, 4, 4, 2 (unshuffled), accuracy metric and
    validation data: the history (Keras's sample-weighted running means, validation
    at each epoch's end) and the final weights."""
    return [{"id": f"model_fit-{name}", "family": "model_fit", "kind": "fit",
             "seed": 9500 + i, "optimizer": opt, "optimizer_args": args, "loss": loss,
             "samples": 14, "val_samples": 6, "batch_size": 4, "epochs": 2}
            for i, (name, opt, args, loss) in enumerate(FIT_CASES)]


# --------------------------------------------------------------------------------------
# Layers and losses added after the original set (appended after it, so that the
# original cases and their live sample stay as they were).
# --------------------------------------------------------------------------------------
NEW_ACTIVATIONS = ("elu", "leaky_relu", "gelu", "swish", "silu", "softplus")


def _activation_name_cases():
    """The activation names added later, through Activation, Dense and Conv2D."""
    out = [_layer_case("activation", act, "Activation", {"activation": act}, [4, 7], 10000 + i)
           for i, act in enumerate(NEW_ACTIVATIONS)]
    # |x| from 1e-3 to 1e3: saturation, exp overflow, gelu's erfc tail, softplus(1000)
    for i, act in enumerate(("elu", "gelu", "silu", "softplus")):
        out.append(_layer_case("activation", f"{act}-wide-range", "Activation",
                               {"activation": act}, [4, 7], 10010 + i, inputs="wide"))
    # exact zeros and -0.0: the kink's slope (elu'(0) = alpha = 1, leaky_relu'(0) = 1)
    for i, act in enumerate(("elu", "leaky_relu")):
        out.append(_layer_case("activation", f"{act}-at-zero", "Activation",
                               {"activation": act}, [4, 7], 10020 + i, inputs="zeros"))
    for i, act in enumerate(NEW_ACTIVATIONS):
        out.append(_layer_case("dense", f"{act}-{'bias' if i % 3 else 'nobias'}", "Dense",
                               {"units": 5, "activation": act, "use_bias": bool(i % 3)},
                               [4, 7] if i % 2 else [3, 2, 6], 10100 + i))
    conv = [("same", (3, 3), (1, 1), (2, 5, 6, 2), 3), ("valid", (2, 3), (2, 1), (2, 6, 7, 3), 2),
            ("same", (3, 2), (2, 2), (2, 7, 5, 1), 4), ("valid", (3, 3), (1, 2), (2, 6, 8, 2), 3),
            ("same", (1, 3), (1, 1), (2, 4, 5, 3), 2), ("valid", (2, 2), (1, 1), (2, 5, 5, 2), 3)]
    for i, (act, (padding, k, s, (n, h, w, c), f)) in enumerate(zip(NEW_ACTIVATIONS, conv)):
        fmt = ("channels_last", "channels_first")[i % 2]
        name = (f"{padding}-k{k[0]}x{k[1]}-s{s[0]}x{s[1]}-{_fmt_tag(fmt)}-bias-{act}-{40 + i:02d}")
        args = {"filters": f, "kernel_size": list(k), "strides": list(s), "padding": padding,
                "data_format": fmt, "use_bias": True, "activation": act}
        out.append(_layer_case("conv2d", name, "Conv2D", args, _spatial_shape(n, h, w, c, fmt),
                               10200 + i))
    return out


def _global_pooling_cases():
    out, i = [], 0
    shapes = [(2, 3, 4, 3), (2, 5, 2, 2), (3, 2, 3, 1), (2, 4, 4, 2)]
    specs = [(mode, fmt, keepdims, shape, "uniform")
             for mode in ("avg", "max")
             for (fmt, keepdims), shape in zip(
                 [(f, k) for f in ("channels_last", "channels_first") for k in (False, True)],
                 shapes)]
    # Ties: several cells hold a channel's maximum (small integers; "binary": 0/1 with
    # the first image all ones, so that all H*W cells tie), dy split equally among them
    # by Keras (JAX's reduce_max gradient) and by minicnn; all-negative inputs.
    specs += [("max", "channels_last", False, (2, 3, 3, 2), "ties"),
              ("max", "channels_first", True, (2, 2, 3, 3), "ties"),
              ("max", "channels_last", True, (3, 2, 2, 4), "binary"),
              ("max", "channels_first", False, (2, 3, 2, 2), "negative"),
              ("avg", "channels_first", True, (2, 3, 3, 2), "ties")]
    for mode, fmt, keepdims, (n, h, w, c), style in specs:
        family, cls = {"avg": ("global_avg_pooling", "GlobalAveragePooling2D"),
                       "max": ("global_max_pooling", "GlobalMaxPooling2D")}[mode]
        name = (f"{_fmt_tag(fmt)}-{'keepdims' if keepdims else 'flat'}"
                f"{'' if style == 'uniform' else '-' + style}-{i:02d}")
        out.append(_layer_case(family, name, cls, {"data_format": fmt, "keepdims": keepdims},
                               _spatial_shape(n, h, w, c, fmt), 10300 + i, inputs=style))
        i += 1
    return out


def _reshaping_cases():
    out = []
    edge_forms = [("int", 1, 2), ("pair", [2, 1], [1, 2]),
                  ("edges", [[1, 2], [0, 3]], [[2, 0], [1, 3]]),
                  ("mixed", [[0, 2], 1], [1, [0, 2]])]
    i = 0
    for form, pad, crop in edge_forms:
        for fmt in ("channels_last", "channels_first"):
            if form == "mixed" and fmt == "channels_first":
                continue
            out.append(_layer_case("zero_padding", f"{form}-{_fmt_tag(fmt)}", "ZeroPadding2D",
                                   {"padding": pad, "data_format": fmt},
                                   _spatial_shape(2, 3, 4, 2, fmt), 10400 + i))
            out.append(_layer_case("cropping", f"{form}-{_fmt_tag(fmt)}", "Cropping2D",
                                   {"cropping": crop, "data_format": fmt},
                                   _spatial_shape(2, 6, 7, 2, fmt), 10420 + i))
            i += 1
    for i, (size, fmt, shape) in enumerate([(2, "channels_last", (2, 3, 2, 2)),
                                            (2, "channels_first", (2, 2, 3, 3)),
                                            ([2, 3], "channels_last", (2, 2, 3, 3)),
                                            ([3, 1], "channels_first", (2, 3, 2, 2))]):
        tag = f"{size}" if isinstance(size, int) else f"{size[0]}x{size[1]}"
        out.append(_layer_case("upsampling", f"size{tag}-{_fmt_tag(fmt)}", "UpSampling2D",
                               {"size": size, "data_format": fmt, "interpolation": "nearest"},
                               _spatial_shape(*shape, fmt), 10440 + i))
    for i, (name, target, shape) in enumerate([("rank4-to-2d", [4, -1], [2, 3, 4, 2]),
                                               ("flat-to-3d", [-1, 2, 3], [2, 12]),
                                               ("rank4-to-rank3", [6, 2, 2], [2, 2, 3, 4]),
                                               ("rank3-to-flat", [-1], [3, 2, 5])]):
        out.append(_layer_case("reshape", name, "Reshape", {"target_shape": target}, shape,
                               10460 + i))
    for i, (name, args, shape) in enumerate([
            ("scale", {"scale": 1 / 255}, [4, 6]),
            ("scale-offset", {"scale": 1 / 127.5, "offset": -1.0}, [2, 3, 3, 2]),
            ("negative-scale-offset", {"scale": -2.5, "offset": 0.75}, [3, 2, 4]),
            ("per-channel", {"scale": [0.5, -2.0, 3.0], "offset": [0.1, 0.0, -0.3]},
             [2, 2, 3, 3])]):
        out.append(_layer_case("rescaling", name, "Rescaling", args, shape, 10480 + i))
    out.append(_layer_case("identity", "rank2", "Identity", {}, [3, 5], 10490))
    out.append(_layer_case("identity", "rank4", "Identity", {}, [2, 3, 2, 2], 10491))
    return out


def _activation_layer_cases():
    """Softmax, ReLU, LeakyReLU and ELU layers. "grid" inputs are multiples of 0.5 in
    [-3, 8]: they hit 0, every threshold and max_value below exactly, where the slope
    is a convention (Keras's, through JAX's autodiff, is what minicnn must give)."""
    fam = "activation_layers"
    specs = [
        ("softmax-axis-1", "Softmax", {"axis": -1}, [4, 6], "uniform"),
        ("softmax-axis-1-rank4", "Softmax", {"axis": -1}, [2, 3, 2, 4], "uniform"),
        ("softmax-axis1-rank4", "Softmax", {"axis": 1}, [2, 3, 2, 4], "uniform"),
        ("softmax-axis-2-rank3", "Softmax", {"axis": -2}, [3, 4, 2], "uniform"),
        ("softmax-axes1-2-rank4", "Softmax", {"axis": [1, 2]}, [2, 3, 2, 2], "uniform"),
        ("softmax-axis1-wide-range", "Softmax", {"axis": 1}, [3, 5, 2], "wide"),
        ("relu-defaults", "ReLU", {}, [4, 6], "grid"),
        ("relu-max6", "ReLU", {"max_value": 6.0}, [4, 6], "grid"),
        ("relu-max4.5", "ReLU", {"max_value": 4.5}, [4, 6], "grid"),
        ("relu-threshold1", "ReLU", {"threshold": 1.0}, [4, 6], "grid"),
        ("relu-slope0.1", "ReLU", {"negative_slope": 0.1}, [4, 6], "grid"),
        ("relu-slope0.2-max2.5", "ReLU", {"negative_slope": 0.2, "max_value": 2.5}, [4, 6],
         "grid"),
        ("relu-slope0.1-threshold0.5", "ReLU", {"negative_slope": 0.1, "threshold": 0.5},
         [4, 6], "grid"),
        ("relu-max6-threshold0.5", "ReLU", {"max_value": 6.0, "threshold": 0.5}, [4, 6],
         "grid"),
        ("relu-all-three", "ReLU", {"max_value": 4.5, "negative_slope": 0.3, "threshold": 1.0},
         [2, 3, 2, 2], "grid"),
        ("relu-slope0.1-max0.5-uniform", "ReLU", {"negative_slope": 0.1, "max_value": 0.5},
         [4, 6], "uniform"),
        ("leaky_relu-default", "LeakyReLU", {}, [4, 6], "grid"),
        ("leaky_relu-slope0.01", "LeakyReLU", {"negative_slope": 0.01}, [2, 3, 2, 2], "grid"),
        ("leaky_relu-slope0", "LeakyReLU", {"negative_slope": 0.0}, [4, 6], "grid"),
        ("elu-default", "ELU", {}, [4, 6], "grid"),
        ("elu-alpha0.5", "ELU", {"alpha": 0.5}, [2, 3, 2, 2], "grid"),
        ("elu-alpha-negative", "ELU", {"alpha": -0.7}, [4, 6], "grid"),
        ("elu-alpha2-wide-range", "ELU", {"alpha": 2.0}, [4, 6], "wide"),
    ]
    return [_layer_case(fam, name, cls, args, shape, 10500 + i, inputs=style)
            for i, (name, cls, args, shape, style) in enumerate(specs)]


def _merge_case(family, name, layer, args, input_shapes, seed, inputs="uniform"):
    return {"id": f"{family}-{name}", "family": family, "kind": "merge", "seed": seed,
            "layer": layer, "args": args, "input_shapes": [list(s) for s in input_shapes],
            "inputs": inputs}


def _merge_cases():
    """Layers over a list of inputs: y, and one dx per input. "ties" inputs are small
    integers, so that 2 and 3 inputs are often equal (JAX's pairwise tie rule for
    Maximum/Minimum gives 1/2, 1/2 for a pair and 1/4, 1/4, 1/2 for three)."""
    two, three = [[4, 5]] * 2, [[2, 3, 2, 2]] * 3
    specs = [
        ("merge", "add-2-rank2", "Add", {}, two, "uniform"),
        ("merge", "add-3-rank4", "Add", {}, three, "uniform"),
        ("merge", "subtract-rank2", "Subtract", {}, two, "uniform"),
        ("merge", "subtract-rank4", "Subtract", {}, [[2, 3, 2, 2]] * 2, "uniform"),
        ("merge", "multiply-2-rank2", "Multiply", {}, two, "uniform"),
        ("merge", "multiply-3-rank4", "Multiply", {}, three, "uniform"),
        ("merge", "average-2-rank2", "Average", {}, two, "uniform"),
        ("merge", "average-3-rank4", "Average", {}, three, "uniform"),
        ("merge_extreme", "maximum-2-rank2", "Maximum", {}, two, "uniform"),
        ("merge_extreme", "maximum-2-rank4-ties", "Maximum", {}, [[2, 3, 2, 2]] * 2, "ties"),
        ("merge_extreme", "maximum-3-rank3-ties", "Maximum", {}, [[3, 4, 3]] * 3, "ties"),
        ("merge_extreme", "minimum-2-rank2", "Minimum", {}, two, "uniform"),
        ("merge_extreme", "minimum-2-rank4-ties", "Minimum", {}, [[2, 3, 2, 2]] * 2, "ties"),
        ("merge_extreme", "minimum-3-rank3-ties", "Minimum", {}, [[3, 4, 3]] * 3, "ties"),
        ("concatenate", "axis-1-rank4", "Concatenate", {"axis": -1},
         [[2, 3, 2, 2], [2, 3, 2, 3]], "uniform"),
        ("concatenate", "axis-1-3-inputs-rank2", "Concatenate", {"axis": -1},
         [[3, 2], [3, 4], [3, 1]], "uniform"),
        ("concatenate", "axis1-rank4", "Concatenate", {"axis": 1},
         [[2, 2, 3, 2], [2, 3, 3, 2]], "uniform"),
        ("concatenate", "axis-2-rank3", "Concatenate", {"axis": -2},
         [[2, 1, 3], [2, 3, 3]], "uniform"),
        ("concatenate", "axis2-rank4", "Concatenate", {"axis": 2},
         [[2, 2, 1, 3], [2, 2, 2, 3], [2, 2, 3, 3]], "uniform"),
    ]
    return [_merge_case(family, name, cls, args, shapes, 10600 + i, inputs)
            for i, (family, name, cls, args, shapes, inputs) in enumerate(specs)]


def _new_loss_cases():
    """Binary cross-entropy on probabilities and logits, and categorical / sparse
    categorical cross-entropy from logits (``loss_args`` go to both libraries)."""
    def case(family, name, loss, shape, seed, targets, **extra):
        return dict({"id": f"{family}-{name}", "family": family, "kind": "loss", "seed": seed,
                     "loss": loss, "shape": shape, "targets": targets}, **extra)
    logits = {"loss_args": {"from_logits": True}}
    bce = "BinaryCrossentropy"
    return [
        case("loss_bce", "edge-values", bce, [6, 4], 10700, "binary-edge"),
        case("loss_bce", "soft-targets", bce, [5, 3], 10701, "binary-soft"),
        case("loss_bce", "rank3", bce, [2, 3, 4], 10702, "binary"),
        case("loss_bce", "logits-edge-values", bce, [6, 4], 10703, "binary-logits-edge",
             **logits),
        case("loss_bce", "logits-soft-targets", bce, [5, 3], 10704, "binary-logits-soft",
             **logits),
        case("loss_bce", "logits-rank3", bce, [2, 3, 4], 10705, "binary-logits", **logits),
        case("loss_cce", "logits-edge-rows", "CategoricalCrossentropy", [8, 5], 10710,
             "logits-edge", **logits),
        case("loss_cce", "logits-soft-labels", "CategoricalCrossentropy", [6, 4], 10711,
             "logits-soft", **logits),
        case("loss_cce", "logits-unnormalized-targets", "CategoricalCrossentropy", [6, 4],
             10712, "logits-unnormalized", **logits),
        case("loss_cce", "logits-rank3", "CategoricalCrossentropy", [2, 3, 4], 10713,
             "logits-edge", **logits),
        case("loss_scce", "logits-edge-rows-labels-n", "SparseCategoricalCrossentropy", [8, 5],
             10720, "logits-edge", label_shape="n", **logits),
        case("loss_scce", "logits-edge-rows-labels-n1", "SparseCategoricalCrossentropy",
             [8, 5], 10721, "logits-edge", label_shape="n1", **logits),
    ]


def all_cases():
    """Every case, in a fixed order (the same on every run)."""
    return (_conv_cases() + _conv_full_cases() + _pool_cases() + _dense_cases()
            + _activation_cases() + _flatten_dropout_cases() + _bn_cases() + _loss_cases()
            + _optimizer_cases() + _model_cases() + _fit_cases() + _new_cases())


# The live module runs every case of the cheap families and a seeded sample of the
# random ones (it must stay under 2 minutes with real Keras on a CPU).
LIVE_EVERY = {"conv2d": 4, "conv2d_full": 3, "max_pooling": 3, "avg_pooling": 3,
              "min_pooling": 3}
LIVE_MODELS = ("strides_demo", "lenet5", "mini_alexnet")
# The cases added later: a sample of them, every LIVE_EVERY_NEW-th per family (counted
# from the family's first added case), and every tie case; the activation names added to
# "activation", "dense" and "conv2d" count as one group of their own. The original
# families keep their sample above.
LIVE_EVERY_NEW = {"activation_names": 3, "global_avg_pooling": 2, "global_max_pooling": 2,
                  "zero_padding": 3, "cropping": 3, "upsampling": 2, "reshape": 2,
                  "rescaling": 2, "identity": 2, "activation_layers": 3, "merge": 2,
                  "merge_extreme": 3, "concatenate": 2, "loss_bce": 2, "loss_cce": 2,
                  "loss_scce": 2}
LIVE_ALWAYS_INPUTS = ("ties", "negative", "positive")


def _new_cases():
    return (_activation_name_cases() + _global_pooling_cases() + _reshaping_cases()
            + _activation_layer_cases() + _merge_cases() + _new_loss_cases())


def live_cases():
    out, seen = [], {}
    new = {c["id"] for c in _new_cases()}
    for case in all_cases():
        fam = case["family"]
        if case["id"] in new:
            group = "activation_names" if case.get("layer") in ("Activation", "Dense", "Conv2D") \
                else fam
            k = seen[("new", group)] = seen.get(("new", group), -1) + 1
            if case.get("inputs") in LIVE_ALWAYS_INPUTS or k % LIVE_EVERY_NEW[group] == 0:
                out.append(case)
            continue
        k = seen[fam] = seen.get(fam, -1) + 1
        if case["kind"] == "model":
            if case["model"] in LIVE_MODELS or case["step"] == "predict":
                out.append(case)
        elif case.get("inputs") in LIVE_ALWAYS_INPUTS \
                or k % LIVE_EVERY.get(fam, 1) == 0:
            out.append(case)
    return out


# ======================================================================================
# Inputs
# ======================================================================================
def _u(rng, shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(F32)


def _layer_weights(case, rng):
    weights = []
    for kind, shape in zip(layer_weight_kinds(case), layer_weight_shapes(case)):
        if kind == "kernel":
            fan_in = math.prod(shape[:-1])
            weights.append(_u(rng, shape) * F32(math.sqrt(3.0 / fan_in)))
        elif kind == "bias" or kind == "beta" or kind == "moving_mean":
            weights.append(_u(rng, shape, -0.5, 0.5))
        elif kind == "gamma":
            weights.append(_u(rng, shape, 0.5, 1.5))
        elif kind == "moving_variance":
            weights.append(_u(rng, shape, 0.5, 2.0))
    return weights


def _bn_input(rng, shape, axis):
    """Per-channel offset and scale, so normalization has something to undo."""
    c = shape[axis]
    bshape = [1] * len(shape)
    bshape[axis] = c
    scale = rng.uniform(0.5, 3.0, size=c).reshape(bshape)
    shift = rng.uniform(-2.0, 2.0, size=c).reshape(bshape)
    return (rng.uniform(-1, 1, size=shape) * scale + shift).astype(F32)


def _edge_probabilities(rng, n, k):
    """Rows of probabilities that exercise Keras's renormalize-then-clip rule; the true
    class of row r is labels[r]."""
    labels = rng.integers(0, k, size=n)
    p = np.zeros((n, k))
    for r in range(n):
        t = labels[r]
        rest = rng.uniform(0.2, 1.0, size=k)
        rest[t] = 0
        rest /= rest.sum()
        true_p = {0: None, 1: None, 2: 0.0, 3: 1e-9, 4: 1 - 1e-9, 5: 1e-5, 6: 1 - 1e-5,
                  7: None}.get(r % 8)
        if true_p is None:
            row = rng.uniform(0.05, 1.0, size=k)
            row /= row.sum()
            if r % 8 == 7:
                row *= 1.7            # does not sum to 1: Keras renormalizes
        else:
            row = rest * (1 - true_p)
            row[t] = true_p
        p[r] = row
    return p.astype(F32), labels.astype(np.int32)


# Binary cross-entropy's edge probabilities: 0 and 1, exactly on the clip bounds
# (float32(1e-7) and float32(1 - 1e-7), where JAX's clip derivative is 1/2), beyond them
# (1e-9; 1 - 1e-9 rounds to 1), and just inside; each with target 0 and target 1.
BCE_EDGE_P = (0.0, 1.0, 1e-7, 1 - 1e-7, 1e-9, 1 - 1e-9, 1e-5, 1 - 1e-5, 2e-7, 0.5)
# ... and logits: far beyond float32's sigmoid saturation, and 0.
BCE_EDGE_Z = (-100.0, -30.0, -17.0, -5.0, 0.0, 5.0, 17.0, 30.0, 100.0)


def _binary_loss_inputs(rng, shape, targets):
    size = math.prod(shape)
    logits = "logits" in targets
    if targets.endswith("soft"):
        y = rng.uniform(0, 1, size=size)
    else:
        y = rng.integers(0, 2, size=size).astype(np.float64)
    p = rng.normal(0, 3.0, size=size) if logits else rng.uniform(0.02, 0.98, size=size)
    if targets.endswith("edge"):
        edges = BCE_EDGE_Z if logits else BCE_EDGE_P
        assert 2 * len(edges) <= size
        for j, v in enumerate(edges):
            p[2 * j:2 * j + 2] = v
            y[2 * j:2 * j + 2] = (0.0, 1.0)
    return {"y_true": y.astype(F32).reshape(shape), "y_pred": p.astype(F32).reshape(shape)}


def _logits_loss_inputs(rng, case, n, k):
    """Logits for (sparse) categorical cross-entropy with ``from_logits=True``: N(0, 2),
    and in "edge" batches rows that are confidently right (true logit +40), confidently
    wrong (-40) and rows of logits around +-100 (the max shift matters)."""
    targets = case["targets"]
    labels = rng.integers(0, k, size=n)
    z = rng.normal(0, 2.0, size=(n, k))
    if targets == "logits-edge":
        for r in range(n):
            if r % 4 == 1:
                z[r, labels[r]] = 40.0
            elif r % 4 == 2:
                z[r, labels[r]] = -40.0
            elif r % 4 == 3:
                z[r] += 100.0 * (1 if r % 8 == 3 else -1)
    if case["loss"] == "SparseCategoricalCrossentropy":
        y = labels.astype(np.int32)
        y = y if case["label_shape"] == "n" else y[:, None]
    elif targets == "logits-soft":
        y = rng.uniform(0, 1, size=(n, k))
        y = (y / y.sum(-1, keepdims=True)).astype(F32)
    elif targets == "logits-unnormalized":    # sum(y) != 1: the gradient has p * sum(y)
        y = rng.uniform(0, 1, size=(n, k)).astype(F32)
    else:
        y = np.eye(k, dtype=F32)[labels]
    shape = case["shape"]
    return {"y_true": y.reshape(shape) if y.dtype == F32 else y,
            "y_pred": z.astype(F32).reshape(shape)}


BN_INIT = {"gamma": (0.8, 1.2), "beta": (-0.1, 0.1), "moving_mean": (-0.1, 0.1),
           "moving_variance": (0.5, 1.5)}


def model_initial_weights(shapes, seed, kinds=None):
    """Glorot-uniform kernels, small nonzero biases and batch-norm weights near their
    defaults (``kinds`` names each weight), from numpy, in get_weights order."""
    rng = np.random.default_rng(seed)
    out = []
    for i, shape in enumerate(shapes):
        shape = tuple(shape)
        kind = kinds[i] if kinds else None
        if kind in BN_INIT:
            out.append(_u(rng, shape, *BN_INIT[kind]))
        elif len(shape) == 1:
            out.append(_u(rng, shape, -0.05, 0.05))
        else:
            receptive = math.prod(shape[:-2])
            fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            out.append(_u(rng, shape, -limit, limit))
    return out


def weights_checksum(weights):
    return [[float(w.sum(dtype=np.float64)), float(np.square(w, dtype=np.float64).sum()),
             float(w.flat[0])] for w in weights]


def _model_input_shape(model):
    return {"lenet_cifar": (32, 32, 3), "mini_alexnet": (35, 35, 3),
            "fit_convnet": (8, 8, 1)}.get(model, (28, 28, 1))


def make_inputs(case):
    """The case's input arrays, from its seed."""
    rng = np.random.default_rng(case["seed"])
    kind = case["kind"]
    if kind == "layer":
        shape = case["input_shape"]
        if case["inputs"] == "ties":
            x = rng.integers(0, 3, size=shape).astype(F32)
        elif case["inputs"] == "negative":
            x = _u(rng, shape, -2.0, -1.0)
        elif case["inputs"] == "positive":
            x = _u(rng, shape, 1.0, 2.0)
        elif case["inputs"] == "wide":
            x = (np.sign(rng.uniform(-1, 1, size=shape))
                 * 10.0 ** rng.uniform(-3, 3, size=shape)).astype(F32)
        elif case["inputs"] == "zeros":
            x = _u(rng, shape)
            pick = rng.integers(0, 3, size=shape)
            x[pick == 0] = 0.0
            x[pick == 1] = -0.0
            x[0], x[1] = 0.0, -0.0      # whole rows: a Dense without bias gets z = 0
        elif case["inputs"] == "bn":
            x = _bn_input(rng, shape, case["args"].get("axis", -1))
        elif case["inputs"] == "binary":
            x = rng.integers(0, 2, size=shape).astype(F32)
            x[0] = 1.0                    # every channel of the first image ties H*W ways
        elif case["inputs"] == "grid":
            # multiples of 0.5 in [-3, 8]; the first entries are the kinks, so that every
            # case has them whatever its size: 0, -0.0, 0.5, 1, 2.5, 4.5, 6
            x = (rng.integers(-6, 17, size=shape) * 0.5).astype(F32)
            kinks = np.array([0.0, -0.0, 0.5, 1.0, 2.5, 4.5, 6.0], F32)
            x.reshape(-1)[:len(kinks)] = kinks
        else:
            x = _u(rng, shape)
        data = {"x": x}
        for i, w in enumerate(_layer_weights(case, rng)):
            data[f"w{i}"] = w
        data["dy"] = _u(rng, layer_output_shape(case))
        return data
    if kind == "merge":
        data = {}
        for i, shape in enumerate(case["input_shapes"]):
            data[f"x{i}"] = (rng.integers(0, 3, size=shape).astype(F32)
                             if case["inputs"] == "ties" else _u(rng, shape))
        data["dy"] = _u(rng, merge_output_shape(case))
        return data
    if kind == "bn_moving":
        shape, t = case["input_shape"], case["calls"]
        axis = case["args"].get("axis", -1)
        data = {"xs": np.stack([_bn_input(rng, shape, axis) for _ in range(t)]),
                "x_eval": _bn_input(rng, shape, axis)}
        for i, w in enumerate(_layer_weights(dict(case, kind="layer"), rng)):
            data[f"w{i}"] = w
        return data
    if kind == "loss":
        shape, targets = case["shape"], case["targets"]
        n, k = math.prod(shape[:-1]), shape[-1]
        if targets.startswith("binary"):
            return _binary_loss_inputs(rng, shape, targets)
        if targets.startswith("logits"):
            return _logits_loss_inputs(rng, case, n, k)
        if targets == "real":
            return {"y_true": _u(rng, shape), "y_pred": _u(rng, shape)}
        if targets == "edge":
            p, labels = _edge_probabilities(rng, n, k)
        else:
            logits = rng.normal(0, 1.5, size=(n, k))
            p = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(F32)
            labels = rng.integers(0, k, size=n).astype(np.int32)
        if case["loss"] == "SparseCategoricalCrossentropy":
            y = labels if case["label_shape"] == "n" else labels[:, None]
        elif targets == "soft":
            y = rng.uniform(0, 1, size=(n, k))
            y = (y / y.sum(-1, keepdims=True)).astype(F32)
        else:
            y = np.eye(k, dtype=F32)[labels]
        return {"y_true": y.reshape(shape) if y.dtype == F32 else y,
                "y_pred": p.reshape(shape)}
    if kind == "fused":
        n, k = case["shape"]
        labels = rng.integers(0, k, size=n)
        z = rng.normal(0, 2.0, size=(n, k))
        clipped = np.zeros(n, dtype=F32)
        # rows 4, 5: clipping active (true-class p ~7e-10, and 1.0 in float32);
        # rows 6, 7: close to the clip bounds but inside (p ~4e-5 and ~1 - 2e-5).
        for r, (true_logit, is_clipped) in {4: (-20.0, 1), 5: (25.0, 1), 6: (-9.0, 0),
                                             7: (12.0, 0)}.items():
            z[r] = 0.0
            z[r, labels[r]] = true_logit
            clipped[r] = is_clipped
        y = labels.astype(np.int32) if case["loss"].startswith("Sparse") else \
            np.eye(k, dtype=F32)[labels]
        return {"logits": z.astype(F32), "y_true": y, "clipped_rows": clipped}
    if kind == "optimizer":
        f, t, b = case["features"], case["steps"], case["batch"]
        data = {"xs": (_u(rng, (t, b, f)) * F32(case["x_scale"])).astype(F32)}
        fan = f
        for j, spec in enumerate(case["layers"]):
            u = spec["units"]
            data[f"w{j}_kernel"] = _u(rng, (fan, u)) * F32(math.sqrt(3.0 / fan))
            if spec.get("use_bias", True):
                data[f"w{j}_bias"] = _u(rng, (u,), -0.2, 0.2)
            fan = u
        units = case["layers"][-1]["units"]
        labels = rng.integers(0, units, size=(t, b)).astype(np.int32)
        if case["loss"] == "sparse_categorical_crossentropy":
            data["ys"] = labels
        elif case["loss"] == "categorical_crossentropy":
            data["ys"] = np.eye(units, dtype=F32)[labels]
        else:
            data["ys"] = _u(rng, (t, b, units))
        return data
    if kind == "model":
        x = rng.uniform(0, 1, size=(case["batch"],) + _model_input_shape(case["model"]))
        labels = rng.integers(0, 10, size=case["batch"]).astype(np.int32)
        return {"x": x.astype(F32), "labels": labels}
    if kind == "fit":
        shape = _model_input_shape("fit_convnet")
        n, nv = case["samples"], case["val_samples"]
        return {"x": rng.uniform(0, 1, size=(n,) + shape).astype(F32),
                "labels": rng.integers(0, 10, size=n).astype(np.int32),
                "x_val": rng.uniform(0, 1, size=(nv,) + shape).astype(F32),
                "labels_val": rng.integers(0, 10, size=nv).astype(np.int32)}
    raise ValueError(kind)


def optimizer_initial_weights(case, data):
    keys = [f"w{j}_{part}" for j in range(len(case["layers"])) for part in ("kernel", "bias")]
    return [data[k] for k in keys if k in data]


def model_targets(case, labels):
    if case["loss"] == "categorical_crossentropy":
        return np.eye(10, dtype=F32)[labels]
    return labels


def reduced_index(size):
    return np.unique(np.linspace(0, size - 1, SAMPLE_SIZE).round().astype(np.int64))


def model_weight_results(w_init, w_after):
    """What a model fixture keeps of the weights after a step: small arrays whole, big
    ones as a fixed sample of entries plus the row and column means of the update
    (together they see every entry; a mean's error is bounded by the entries' bound)."""
    out = {}
    for i, (w0, w1) in enumerate(zip(w_init, w_after)):
        w1 = np.asarray(w1, dtype=F32)
        if w1.size <= FULL_LIMIT:
            out[f"w_after{i}"] = w1
        else:
            out[f"w_after{i}_sample"] = w1.ravel()[reduced_index(w1.size)]
            update = w1.astype(np.float64) - np.asarray(w0, dtype=np.float64)
            out[f"update{i}_rowmean"] = update.mean(axis=1).astype(F32)
            out[f"update{i}_colmean"] = update.mean(axis=0).astype(F32)
    return out


# ======================================================================================
# Keras (imported only here)
# ======================================================================================
def import_keras():
    """keras with the JAX backend on the CPU (environment set before the first import)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import keras
    if keras.backend.backend() != "jax":
        raise RuntimeError(f"the Keras cross-checks need the JAX backend; keras was imported "
                           f"with {keras.backend.backend()!r} (set KERAS_BACKEND=jax)")
    keras.config.set_floatx("float32")
    return keras


def keras_versions():
    import platform
    import jax
    import jaxlib
    keras = import_keras()
    return {"keras": keras.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "keras_backend": keras.backend.backend(), "device": "cpu", "floatx": "float32"}


def _tuple_deep(v):
    return tuple(_tuple_deep(e) for e in v) if isinstance(v, list) else v


def _tupled(args):
    """JSON lists -> tuples (nested ones too: ((top, bottom), (left, right)))."""
    return {k: _tuple_deep(v) for k, v in args.items()}


def _keras_layer(keras, case, x):
    args = _tupled(case["args"])
    if case["oracle"] == "zero_pad_valid":
        args["padding"] = "valid"
    if case["layer"] in ("Conv2D", "Dense"):
        # set_weights replaces them; zeros skip compiling Keras's random initializer.
        args.update(kernel_initializer="zeros", bias_initializer="zeros")
    layer = getattr(keras.layers, case.get("keras_layer", case["layer"]))(**args)
    layer.build(x.shape)
    return layer


def _keras_call_kwargs(layer, training):
    import inspect
    return {"training": training} if "training" in inspect.signature(layer.call).parameters \
        else {}


def _keras_layer_grads(layer, x, dy, training):
    """y, dL/dx, [dL/dw for trainable weights], new non-trainable values, for
    L = sum(y * dy)."""
    import jax
    import jax.numpy as jnp
    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]
    kwargs = _keras_call_kwargs(layer, training)
    dy = jnp.asarray(dy)

    def objective(tv, x):
        y, new_ntv = layer.stateless_call(tv, ntv, x, **kwargs)
        return jnp.sum(y * dy), (y, new_ntv)

    # One jit-compiled function per case: much faster than op-by-op dispatch, and it is
    # how Keras itself runs on JAX (its train and predict steps are jitted too).
    (_, (y, new_ntv)), (dtv, dx) = jax.jit(jax.value_and_grad(
        objective, argnums=(0, 1), has_aux=True))(tv, jnp.asarray(x))
    names = [v.path for v in layer.non_trainable_variables]
    return (np.asarray(y), np.asarray(dx), [np.asarray(g) for g in dtv],
            {n.rsplit("/", 1)[-1]: np.asarray(v) for n, v in zip(names, new_ntv)})


def _check_keras_weight_order(layer, case):
    names = [v.path.rsplit("/", 1)[-1] for v in layer.weights]
    assert names == layer_weight_kinds(case), (names, layer_weight_kinds(case))
    trainable = [v.path.rsplit("/", 1)[-1] for v in layer.trainable_variables]
    assert trainable == [n for n in names if n not in ("moving_mean", "moving_variance")]


def _keras_layer_expected(keras, case, inputs):
    x, dy = inputs["x"], inputs["dy"]
    weights = [inputs[f"w{i}"] for i in range(len(layer_weight_shapes(case)))]
    if case["oracle"] == "zero_pad_valid":
        kh, kw = _pair(case["args"]["kernel_size"])
        spatial = (2, 3) if case["args"].get("data_format") == "channels_first" else (1, 2)
        pad = [(0, 0)] * 4
        pad[spatial[0]], pad[spatial[1]] = (kh - 1, kh - 1), (kw - 1, kw - 1)
        xk = np.pad(x, pad)
    elif case["oracle"] == "negated_max":
        xk = -x
    else:
        xk = x
    layer = _keras_layer(keras, case, xk)
    _check_keras_weight_order(layer, case)
    layer.set_weights(weights)
    y, dx, grads, new_ntv = _keras_layer_grads(layer, xk, dy, case["training"])
    if case["oracle"] == "zero_pad_valid":
        index = [slice(None)] * 4
        index[spatial[0]] = slice(kh - 1, kh - 1 + x.shape[spatial[0]])
        index[spatial[1]] = slice(kw - 1, kw - 1 + x.shape[spatial[1]])
        dx = dx[tuple(index)]
    elif case["oracle"] == "negated_max":
        y = -y   # min(x) = -max(-x); d/dx of sum(dy * -max(-x)) = max'(-x)^T dy
    out = {"y": y, "dx": dx}
    for i, g in enumerate(grads):
        out[f"g{i}"] = g
    if case["layer"] == "BatchNormalization" and case["training"]:
        out["moving_mean"] = new_ntv["moving_mean"]
        out["moving_variance"] = new_ntv["moving_variance"]
    return out


def _keras_bn_moving(keras, case, inputs):
    xs = inputs["xs"]
    layer = _keras_layer(keras, dict(case, oracle="direct"), xs[0])
    layer.set_weights([inputs[f"w{i}"] for i in range(len(layer_weight_shapes(case)))])
    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]
    import jax
    train = jax.jit(lambda tv, ntv, x: layer.stateless_call(tv, ntv, x, training=True))
    ys, means, variances = [], [], []
    for x in xs:
        y, ntv = train(tv, ntv, x)
        ys.append(np.asarray(y))
        means.append(np.asarray(ntv[0]))
        variances.append(np.asarray(ntv[1]))
    y_eval, _ = layer.stateless_call(tv, ntv, inputs["x_eval"], training=False)
    return {"ys": np.stack(ys), "moving_means": np.stack(means),
            "moving_variances": np.stack(variances), "y_eval": np.asarray(y_eval)}


def _keras_merge(keras, case, inputs):
    """y and one dL/dx_i per input of a merge layer, for L = sum(y * dy)."""
    import jax
    import jax.numpy as jnp
    xs = [jnp.asarray(inputs[f"x{i}"]) for i in range(len(case["input_shapes"]))]
    layer = getattr(keras.layers, case["layer"])(**_tupled(case["args"]))
    layer.build([tuple(x.shape) for x in xs])
    assert not layer.weights, layer.weights
    dy = jnp.asarray(inputs["dy"])

    def objective(xs):
        y, _ = layer.stateless_call([], [], xs)
        return jnp.sum(y * dy), y

    (_, y), dxs = jax.jit(jax.value_and_grad(objective, has_aux=True))(xs)
    out = {"y": np.asarray(y)}
    for i, dx in enumerate(dxs):
        out[f"dx{i}"] = np.asarray(dx)
    return out


def _keras_loss(keras, case, inputs):
    import jax
    loss = getattr(keras.losses, case["loss"])(**case.get("loss_args", {}))
    y = inputs["y_true"]
    value, grad = jax.jit(jax.value_and_grad(lambda p: loss(y, p)))(inputs["y_pred"])
    return {"loss": np.asarray(value, F32), "grad": np.asarray(grad)}


def _keras_fused(keras, case, inputs):
    import jax
    loss = getattr(keras.losses, case["loss"])()
    y = inputs["y_true"]

    def objective(z):
        p = keras.activations.softmax(z)
        return loss(y, p), p

    (value, p), dz = jax.jit(jax.value_and_grad(objective, has_aux=True))(inputs["logits"])
    return {"loss": np.asarray(value, F32), "probabilities": np.asarray(p),
            "dlogits": np.asarray(dz)}


def _keras_optimizer(keras, case, inputs):
    layers = [keras.Input((case["features"],))] + [
        keras.layers.Dense(s["units"], activation=s["activation"], use_bias=s.get("use_bias", True),
                           kernel_initializer="zeros") for s in case["layers"]]
    model = keras.Sequential(layers)
    model.set_weights(optimizer_initial_weights(case, inputs))
    model.compile(optimizer=getattr(keras.optimizers, case["optimizer"])(
        **case["optimizer_args"]), loss=case["loss"])
    out, losses = {}, []
    for t in range(case["steps"]):
        losses.append(float(np.asarray(model.train_on_batch(inputs["xs"][t], inputs["ys"][t]))))
        for i, w in enumerate(model.get_weights()):
            out[f"step{t}_w{i}"] = np.asarray(w, F32)
    out["loss"] = np.asarray(losses, F32)
    return out


def keras_model(keras, name):
    """The notebooks' models, written with Keras (the architecture minicnn's examples
    port). Kernels start at zeros only because set_weights replaces them and zeros
    skip compiling Keras's random initializer."""
    L = keras.layers
    Z = {"kernel_initializer": "zeros"}
    if name == "padding_demo":
        body = [L.Conv2D(32, (3, 3), activation="relu", **Z),
                L.Conv2D(32, (3, 3), activation="relu", **Z),
                L.Conv2D(32, (3, 3), activation="relu", **Z),
                L.Flatten(),
                L.Dense(128, activation="relu", **Z),
                L.Dense(10, activation="softmax", **Z)]
    elif name == "strides_demo":
        body = [L.Conv2D(32, (3, 3), strides=2, padding="same", activation="relu", **Z),
                L.Conv2D(32, (3, 3), strides=2, padding="same", activation="relu", **Z),
                L.Conv2D(32, (3, 3), strides=2, padding="same", activation="relu", **Z),
                L.Flatten(),
                L.Dense(128, activation="relu", **Z),
                L.Dense(10, activation="softmax", **Z)]
    elif name == "pooling_demo":
        body = [L.Conv2D(32, (3, 3), activation="relu", **Z),
                L.MaxPooling2D((2, 2)),
                L.Conv2D(32, (3, 3), activation="relu", **Z),
                L.MaxPooling2D((2, 2)),
                L.Flatten(),
                L.Dense(128, activation="relu", **Z),
                L.Dense(10, activation="softmax", **Z)]
    elif name == "lenet_cifar":
        body = [L.Conv2D(6, (5, 5), activation="tanh", **Z),
                L.AveragePooling2D((2, 2)),
                L.Conv2D(16, (5, 5), activation="tanh", **Z),
                L.AveragePooling2D((2, 2)),
                L.Flatten(),
                L.Dense(120, activation="tanh", **Z),
                L.Dense(84, activation="tanh", **Z),
                L.Dense(10, activation="softmax", **Z)]
    elif name == "mini_alexnet":
        body = [L.Conv2D(16, (11, 11), strides=(4, 4), padding="valid", activation="relu", **Z),
                L.MaxPooling2D((3, 3), strides=(2, 2)),
                L.BatchNormalization(),
                L.Conv2D(24, (3, 3), padding="same", activation="relu", **Z),
                L.BatchNormalization(),
                L.Flatten(),
                L.Dense(32, activation="relu", **Z),
                L.BatchNormalization(),
                L.Dense(10, activation="softmax", **Z)]
    elif name == "fit_convnet":
        body = [L.Conv2D(4, (3, 3), activation="relu", **Z),
                L.MaxPooling2D((2, 2)),
                L.Flatten(),
                L.Dense(10, activation="softmax", **Z)]
    elif name == "lenet5":
        body = [L.Conv2D(6, 5, padding="same", activation="tanh", **Z),
                L.AveragePooling2D(2),
                L.Conv2D(16, 5, activation="tanh", **Z),
                L.AveragePooling2D(2),
                L.Flatten(),
                L.Dense(120, activation="tanh", **Z),
                L.Dense(84, activation="tanh", **Z),
                L.Dense(10, activation="softmax", **Z)]
    else:
        raise ValueError(name)
    return keras.Sequential([keras.Input(_model_input_shape(name))] + body)


def _keras_model_run(keras, case, inputs):
    model = keras_model(keras, case["model"])
    shapes = [tuple(w.shape) for w in model.get_weights()]
    kinds = [v.path.rsplit("/", 1)[-1] for v in model.weights]
    w_init = model_initial_weights(shapes, case["seed"], kinds)
    model.set_weights(w_init)
    out = {}
    if case["step"] == "predict":
        out["y"] = np.asarray(model.predict(inputs["x"], verbose=0), F32)
    else:
        model.compile(optimizer=getattr(keras.optimizers, case["optimizer"])(
            **case["optimizer_args"]), loss=case["loss"])
        loss = model.train_on_batch(inputs["x"], model_targets(case, inputs["labels"]))
        out["loss"] = np.asarray(float(np.asarray(loss)), F32)
        out.update(model_weight_results(w_init, model.get_weights()))
    meta = {"weight_shapes": [list(s) for s in shapes], "weight_kinds": kinds,
            "init_checksum": weights_checksum(w_init), "params": int(model.count_params())}
    return out, meta


def _keras_fit(keras, case, inputs):
    model = keras_model(keras, "fit_convnet")
    shapes = [tuple(w.shape) for w in model.get_weights()]
    kinds = [v.path.rsplit("/", 1)[-1] for v in model.weights]
    w_init = model_initial_weights(shapes, case["seed"], kinds)
    model.set_weights(w_init)
    model.compile(optimizer=getattr(keras.optimizers, case["optimizer"])(
        **case["optimizer_args"]), loss=case["loss"], metrics=["accuracy"])
    history = model.fit(inputs["x"], model_targets(case, inputs["labels"]),
                        batch_size=case["batch_size"], epochs=case["epochs"], shuffle=False,
                        verbose=0, validation_data=(inputs["x_val"], model_targets(
                            case, inputs["labels_val"])))
    out = {f"history_{k}": np.asarray(v, F32) for k, v in history.history.items()}
    for i, w in enumerate(model.get_weights()):
        out[f"w_after{i}"] = np.asarray(w, F32)
    meta = {"weight_shapes": [list(s) for s in shapes], "weight_kinds": kinds,
            "init_checksum": weights_checksum(w_init), "params": int(model.count_params()),
            "history_keys": sorted(history.history)}
    return out, meta


def keras_expected(case, inputs):
    """Keras's results for the case: ``(arrays, meta)``; meta is JSON-serializable."""
    keras = import_keras()
    keras.utils.set_random_seed(0)
    kind = case["kind"]
    if kind == "model":
        return _keras_model_run(keras, case, inputs)
    if kind == "fit":
        return _keras_fit(keras, case, inputs)
    runner = {"layer": _keras_layer_expected, "bn_moving": _keras_bn_moving,
              "loss": _keras_loss, "fused": _keras_fused, "optimizer": _keras_optimizer,
              "merge": _keras_merge}[kind]
    return runner(keras, case, inputs), {}


# ======================================================================================
# minicnn, and the comparisons
# ======================================================================================
def _host(a):
    from minicnn.backend import to_host
    return np.asarray(to_host(a))


def _mc_layer(case):
    from minicnn import layers
    return getattr(layers, case["layer"])(**_tupled(case["args"]))


def _guard_case_inputs(case, data):
    """The inputs really hold what the case is about (guards the case construction,
    not minicnn): ties of a channel's maximum, and the kinks of ReLU-like layers."""
    x = data["x"]
    if case["layer"] == "GlobalMaxPooling2D" and case["inputs"] in ("ties", "binary"):
        axes = (2, 3) if case["args"]["data_format"] == "channels_first" else (1, 2)
        count = (x == x.max(axis=axes, keepdims=True)).sum(axis=axes)
        assert count.max() > 1, "no tied maxima"
        if case["inputs"] == "binary":
            assert count.max() == x.shape[axes[0]] * x.shape[axes[1]], "no constant channel"
    if case["inputs"] == "grid":
        a = case["args"]
        kinks = [0.0, a.get("threshold", 0.0)] + (
            [a["max_value"]] if a.get("max_value") is not None else [])
        for v in kinks:
            assert (x == v).any(), f"no input exactly at the kink {v}"


def _check_layer(case, data, chk):
    fam = case["family"]
    _guard_case_inputs(case, data)
    layer = _mc_layer(case)
    layer.build(tuple(data["x"].shape[1:]))
    n_weights = len(layer_weight_shapes(case))
    layer.set_weights([data[f"w{i}"] for i in range(n_weights)])
    y = _host(layer.forward(data["x"], training=case["training"]))
    chk.close("y", y, data["y"], *tolerance(fam, "y"))
    dx = _host(layer.backward(data["dy"]))
    chk.close("dx", dx, data["dx"], *tolerance(fam, "dx"))
    grads = [_host(g) for g in layer.get_gradients()]
    n_grads = len([k for k in data if k.startswith("g") and k[1:].isdigit()])
    assert len(grads) == n_grads, f"{len(grads)} gradients, Keras has {n_grads}"
    kinds = [k for k in layer_weight_kinds(case) if not k.startswith("moving")]
    for i, g in enumerate(grads):
        chk.close(f"d{kinds[i]}", g, data[f"g{i}"], *tolerance(fam, "grads"))
    if "moving_mean" in data:
        after = [_host(w) for w in layer.get_weights()]
        tol = tolerance(fam, "moving")
        chk.close("moving_mean", after[-2], data["moving_mean"], *tol)
        chk.close("moving_variance", after[-1], data["moving_variance"], *tol)


def _check_bn_moving(case, data, chk):
    tol = TOLERANCES[case["family"]]["*"]
    layer = _mc_layer(case)
    layer.build(tuple(data["xs"].shape[2:]))
    n_weights = len([k for k in data if k.startswith("w") and k[1:].isdigit()])
    layer.set_weights([data[f"w{i}"] for i in range(n_weights)])
    for t, x in enumerate(data["xs"]):
        chk.close(f"y[{t}]", _host(layer.forward(x, training=True)), data["ys"][t], *tol)
        weights = [_host(w) for w in layer.get_weights()]
        chk.close(f"moving_mean[{t}]", weights[-2], data["moving_means"][t], *tol)
        chk.close(f"moving_variance[{t}]", weights[-1], data["moving_variances"][t], *tol)
    chk.close("y_eval", _host(layer.forward(data["x_eval"], training=False)), data["y_eval"],
              *tol)


def _check_merge(case, data, chk):
    fam = case["family"]
    n = len(case["input_shapes"])
    xs = [data[f"x{i}"] for i in range(n)]
    if case["inputs"] == "ties":   # guards the case: pairs (and all n) of equal inputs
        same = np.stack([x == xs[0] for x in xs[1:]]).all(axis=0)
        assert same.any() and not same.all(), "no ties between the inputs"
    layer = _mc_layer(case)
    layer.build([tuple(x.shape[1:]) for x in xs])
    y = _host(layer.forward(xs, training=False))
    chk.close("y", y, data["y"], *tolerance(fam, "y"))
    dxs = layer.backward(data["dy"])
    assert len(dxs) == n, f"{len(dxs)} input gradients for {n} inputs"
    for i, dx in enumerate(dxs):
        chk.close(f"dx{i}", _host(dx), data[f"dx{i}"], *tolerance(fam, "dx"))
    assert layer.get_weights() == [] and layer.get_gradients() == []


def _check_loss(case, data, chk):
    from minicnn import losses
    tol = TOLERANCES[case["family"]]["*"]
    loss = getattr(losses, case["loss"])(**case.get("loss_args", {}))
    value = loss(data["y_true"], data["y_pred"])
    chk.close("loss", np.float32(value), data["loss"], *tol)
    grad = _host(loss.gradient(data["y_true"], data["y_pred"]))
    chk.close("dL/dy_pred", grad, data["grad"], *tol)


def _check_fused(case, data, chk):
    """minicnn's fused softmax + cross-entropy gradient (p - y)/N against Keras's
    autodiff through softmax and the clipped cross-entropy.

    Documented deliberate difference (minicnn/ops/losses.py): on rows where Keras's
    clipping is active Keras's gradient is exactly 0 while minicnn's fused gradient is
    (p - y)/N; on every other row they are equal. The unfused minicnn path
    (CategoricalCrossentropy().gradient, then the softmax backward) reproduces Keras on
    every row, zero rows included."""
    from minicnn import losses
    from minicnn.layers import Activation
    from minicnn.ops import losses as loss_ops
    tol = TOLERANCES[case["family"]]["*"]
    z, y = data["logits"], data["y_true"]
    k = z.shape[-1]
    y_dense = np.eye(k, dtype=F32)[y] if y.dtype.kind in "iu" else y
    clipped = data["clipped_rows"].astype(bool)
    n = len(z)
    kz = data["dlogits"]
    # The fixture itself: Keras's rows are exactly 0 where clipping is active, nonzero
    # elsewhere (guards the case construction).
    chk.equal("keras dz on clipped rows", kz[clipped], np.zeros_like(kz[clipped]))
    assert np.all(np.abs(kz[~clipped]).max(axis=1) > 0)

    value, cache = loss_ops.softmax_cross_entropy_forward(z, y_dense)
    chk.close("fused loss", np.float32(_host(value)), data["loss"], *tol)
    dz = _host(loss_ops.softmax_cross_entropy_backward(cache))
    chk.close("fused dz, unclipped rows", dz[~clipped], kz[~clipped], *tol)
    chk.close("fused dz, clipped rows = (p - y)/N", dz[clipped],
              (data["probabilities"][clipped] - y_dense[clipped]) / F32(n), *tol)
    # A confidently wrong row (true-class p < 1e-7) is where the difference matters:
    # Keras gives 0, minicnn about -1/N on the true class.
    wrong = clipped & ((data["probabilities"] * y_dense).sum(axis=1) < 0.5)
    assert wrong.any() and np.all(np.abs(dz[wrong]).max(axis=1) > 0.5 / n)

    # Unfused: the loss object's gradient w.r.t. p, then the softmax layer's backward.
    softmax = Activation("softmax")
    p = _host(softmax.forward(z, training=True))
    chk.close("softmax p", p, data["probabilities"], *tol)
    loss = getattr(losses, case["loss"])()
    chk.close("unfused loss", np.float32(loss(y, p)), data["loss"], *tol)
    dz_unfused = _host(softmax.backward(loss.gradient(y, p)))
    chk.close("unfused dz", dz_unfused, kz, *tol)
    chk.equal("unfused dz on clipped rows", dz_unfused[clipped],
              np.zeros_like(dz_unfused[clipped]))


def _mc_optimizer(case):
    from minicnn import optimizers
    return getattr(optimizers, case["optimizer"])(**case["optimizer_args"])


def _check_optimizer(case, data, chk):
    from minicnn.layers import Dense
    from minicnn.models import Sequential
    fam = case["family"]
    layers = [Dense(s["units"], activation=s["activation"], use_bias=s.get("use_bias", True))
              for s in case["layers"]]
    model = Sequential(layers)
    model.build((None, case["features"]))
    model.set_weights(optimizer_initial_weights(case, data))
    model.compile(optimizer=_mc_optimizer(case), loss=case["loss"])
    losses = []
    for t in range(case["steps"]):
        losses.append(model.train_on_batch(data["xs"][t], data["ys"][t]))
        for i, w in enumerate(model.get_weights()):
            chk.close(f"step {t + 1} weight {i}", w, data[f"step{t}_w{i}"],
                      *tolerance(fam, "weights"))
    chk.close("losses", np.asarray(losses, F32), data["loss"], *tolerance(fam, "loss"))


def mini_alexnet():
    from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D
    from minicnn.models import Sequential
    return Sequential([
        Conv2D(16, (11, 11), strides=(4, 4), padding="valid", activation="relu",
               input_shape=_model_input_shape("mini_alexnet")),
        MaxPooling2D((3, 3), strides=(2, 2)),
        BatchNormalization(),
        Conv2D(24, (3, 3), padding="same", activation="relu"),
        BatchNormalization(),
        Flatten(),
        Dense(32, activation="relu"),
        BatchNormalization(),
        Dense(10, activation="softmax"),
    ])


def fit_convnet():
    from minicnn.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from minicnn.models import Sequential
    return Sequential([
        Conv2D(4, (3, 3), activation="relu", input_shape=_model_input_shape("fit_convnet")),
        MaxPooling2D((2, 2)),
        Flatten(),
        Dense(10, activation="softmax"),
    ])


def load_example_model(name):
    """The minicnn model: from examples/ for the notebooks' models, else from this file."""
    file, function, _ = MODELS.get(name, (None, name, None))
    if file is None:
        return globals()[function]()
    path = REPO_ROOT / "examples" / file
    spec = importlib.util.spec_from_file_location(f"_minicnn_example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)()


def _check_model(case, data, chk, meta):
    fam = case["family"]
    model, w_init = _model_with_initial_weights(case["model"], case, meta)
    if case["step"] == "predict":
        chk.close("predict", model.predict(data["x"]), data["y"], *tolerance(fam, "y"))
        return
    model.compile(optimizer=_mc_optimizer(case), loss=case["loss"])
    loss = model.train_on_batch(data["x"], model_targets(case, data["labels"]))
    chk.close("loss", np.float32(loss), data["loss"], *tolerance(fam, "loss"))
    rtol, atol = tolerance(fam, "weights")
    got = model_weight_results(w_init, model.get_weights())
    for key in sorted(got):
        chk.close(key, got[key], data[key], rtol, atol)


def _model_with_initial_weights(name, case, meta):
    model = load_example_model(name)
    shapes = [list(w.shape) for w in model.get_weights()]
    assert shapes == meta["weight_shapes"], "minicnn's model has other weight shapes than Keras's"
    kinds = [n for layer in model.layers for n in layer.weight_names]
    assert kinds == meta["weight_kinds"], "minicnn's weights come in another order than Keras's"
    assert model.count_params() == meta["params"]
    w_init = model_initial_weights(shapes, case["seed"], kinds)
    np.testing.assert_allclose(weights_checksum(w_init), meta["init_checksum"], rtol=1e-12,
                               err_msg="numpy no longer regenerates the initial weights the "
                                       "fixture was made with; regenerate the fixtures")
    model.set_weights(w_init)
    return model, w_init


def _check_fit(case, data, chk, meta):
    fam = case["family"]
    model, _ = _model_with_initial_weights("fit_convnet", case, meta)
    model.compile(optimizer=_mc_optimizer(case), loss=case["loss"], metrics=["accuracy"])
    history = model.fit(data["x"], model_targets(case, data["labels"]),
                        batch_size=case["batch_size"], epochs=case["epochs"], shuffle=False,
                        verbose=0, validation_data=(data["x_val"], model_targets(
                            case, data["labels_val"])))
    assert sorted(history.history) == meta["history_keys"]
    for key in meta["history_keys"]:
        chk.close(f"history[{key!r}]", np.asarray(history.history[key], F32),
                  data[f"history_{key}"], *tolerance(fam, "history"))
    for i, w in enumerate(model.get_weights()):
        chk.close(f"w_after{i}", w, data[f"w_after{i}"], *tolerance(fam, "weights"))


def check_case(case, data, checker, meta=None):
    """Run minicnn on ``data`` and compare with Keras's results in ``data``."""
    kind = case["kind"]
    if kind == "model":
        return _check_model(case, data, checker, meta)
    if kind == "fit":
        return _check_fit(case, data, checker, meta)
    {"layer": _check_layer, "bn_moving": _check_bn_moving, "loss": _check_loss,
     "fused": _check_fused, "optimizer": _check_optimizer,
     "merge": _check_merge}[kind](case, data, checker)


# ======================================================================================
# Fixture files: deterministic .npz (zip entries with a fixed date, sorted names)
# ======================================================================================
def fixture_path(case):
    return DATA_DIR / f"{case['id']}.npz"


def write_npz(path, arrays):
    """Like np.savez_compressed, but byte-identical for identical arrays: entries in
    sorted order, a fixed timestamp and fixed attributes, no pickled objects."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            payload = io.BytesIO()
            np.lib.format.write_array(payload, np.asarray(arrays[key], order="C"),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, payload.getvalue(), compresslevel=9)
    Path(path).write_bytes(buf.getvalue())


def _check_dtypes(case, arrays):
    for key, a in arrays.items():
        assert a.dtype in (np.float32, np.int32, np.int64) or a.dtype.kind == "U", \
            f"{case['id']}: {key} has dtype {a.dtype}"


def save_fixture(case, inputs, expected, meta):
    arrays = dict(inputs)
    arrays.update(expected)
    arrays = {k: (np.asarray(v, F32) if np.asarray(v).dtype.kind == "f" else np.asarray(v))
              for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == np.int64:
            arrays[k] = v.astype(np.int32)
    _check_dtypes(case, arrays)
    arrays["meta"] = np.array(json.dumps({"case": case, **meta}, sort_keys=True))
    write_npz(fixture_path(case), arrays)


def load_fixture(path):
    """``(case, data, meta)`` from a fixture file (no pickle needed)."""
    with np.load(path, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    meta = json.loads(str(data.pop("meta")))
    return meta.pop("case"), data, meta


def stored_versions():
    return json.loads(VERSIONS_FILE.read_text()) if VERSIONS_FILE.exists() else {}


def summary_header():
    v = stored_versions()
    return (f"minicnn vs Keras {v.get('keras', '?')} (JAX {v.get('jax', '?')}, CPU), float32; "
            f"'reference' = stored fixtures (tests/reference/data), 'live' = Keras run now.\n"
            f"max rel err = max |minicnn - keras| / |keras| over entries with |keras| > atol")
