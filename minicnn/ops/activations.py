"""Element-wise activations and softmax, each a forward/backward pair.

The names an ``activation=`` argument takes (Conv2D, Dense, Activation), with
Keras 3's defaults (``keras.activations.<name>``):

| name       | forward                             | backward: dx =                              |
|------------|-------------------------------------|---------------------------------------------|
| linear     | x                                   | dy                                          |
| relu       | max(x, 0)                           | dy * [x > 0]   (relu'(0) = 0)               |
| tanh       | tanh(x)                             | dy * (1 - y**2)                             |
| sigmoid    | 1 / (1 + exp(-x))                   | dy * y * (1 - y)                            |
| softmax    | exp(x - max) / sum(...)             | y * (dy - sum(dy * y))                      |
| elu        | x if x > 0 else a*(exp(x) - 1), a=1 | dy if x > 0 else dy * (y + a)  (elu'(0) = a)|
| leaky_relu | x if x >= 0 else s*x, s=0.2         | dy if x >= 0 else s*dy   (slope 1 at 0)     |
| gelu       | x * Phi(x) = x/2 * erfc(-x/sqrt(2)) | dy * (Phi(x) + x * exp(-x**2/2)/sqrt(2 pi)) |
| silu       | x * s,  s = sigmoid(x)  (= swish)   | dy * s * (1 + x (1 - s))                    |
| softplus   | log(1 + exp(x)) = logaddexp(x, 0)   | dy * sigmoid(x)                             |

softmax acts on the last axis; its backward is the Jacobian-vector product
``diag(y) - y y^T`` applied to dy, written without building the Jacobian.
The relu gradient of the kernels (numba's and CUDA's) selects: exactly 0 where
x <= 0 even for an infinite or NaN dy, where NumPy's ``dy * [x > 0]`` gives NaN.

Keras's facts behind the new rows (Keras 3.15, JAX backend, checked by running it):
``leaky_relu``'s default slope is 0.2 as an activation name, while the LeakyReLU
*layer* defaults to 0.3; ``gelu`` as an activation is the exact erf form
(``approximate=False``; ``keras.ops.gelu`` alone defaults to the tanh approximation);
``"swish"`` is the same function as ``"silu"`` and a layer's config reports ``"silu"``;
``softplus`` is ``logaddexp(x, 0)``, which never overflows. At the kinks JAX's
derivative is the one in the table: ``elu'(0) = a``, ``leaky_relu'(0) = 1``.
``Phi`` is the standard normal CDF; ``erfc`` is ``minicnn.ops.erfc`` (NumPy has none).

The layer ops with arguments (``<op>_forward``/``<op>_backward`` below; the ReLU,
LeakyReLU, ELU and Softmax layers):

| op               | forward                                 | backward: dx =                |
|------------------|-----------------------------------------|-------------------------------|
| relu(x, s, m, t) | clip(x [x > t], 0, m) - s max(t - x, 0) | dy ([x > t] c(x) + s [x < t]) |
| leaky_relu(x, s) | x if x >= 0 else s x                    | dy if x >= 0 else s dy        |
| elu(x, a)        | x if x > 0 else a (exp(x) - 1)          | dy if x > 0 else dy (y + a)   |
| softmax(x, axis) | exp(x - max) / sum(...) over ``axis``   | y (dy - sum_axis(dy y))       |

(``s = negative_slope``, ``m = max_value`` (None: no ceiling), ``t = threshold``.)
``c(x)`` is the clip's slope: 1 below ``m``, 1/2 at ``x == m`` (JAX splits a tie of
``minimum`` evenly), 0 above -- except for Keras's ``relu6`` shortcut (``m == 6`` and
``t == 0``), whose slope at 6 is 0. ``relu(s)`` alone (no ``m``, ``t == 0``) *is*
``leaky_relu(s)`` (slope 1 at 0), and ``relu()`` alone is ``relu`` above (slope 0 at 0).

``bias_activation_forward`` is the epilogue of Conv2D and Dense: ``activation(z + b)``.
Where the backend has a kernel for it (linear/relu/tanh; numba: float32, CUDA: float32
and float64) it is one pass (``bias_activation`` of the kernel set) instead of a
broadcast add and an activation. numba's tanh is the rational approximation XLA (and
so Keras on JAX) uses, within 3.3e-7 of the exact value; float64 on the CPU always
uses NumPy's tanh, and CUDA uses its own tanhf/tanh. The other activations take the
plain array path on every backend.
"""
import math

from ..backend import get_array_module, kernels_for
from .erfc import erfc

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax",
               "elu", "leaky_relu", "gelu", "silu", "softplus")
# other names for the same function, and the name a layer's config then reports (Keras's)
ACTIVATION_ALIASES = {"swish": "silu"}


def normalize_activation(name, owner=None):
    """None or a case-insensitive name -> one of ACTIVATIONS ("swish" -> "silu")."""
    if name is None:
        return "linear"
    if isinstance(name, str):
        key = name.lower()
        key = ACTIVATION_ALIASES.get(key, key)
        if key in ACTIVATIONS:
            return key
    prefix = f"{owner}: " if owner else ""
    raise ValueError(f"{prefix}unknown activation; expected None or one of "
                     f"{list(ACTIVATIONS) + list(ACTIVATION_ALIASES)}. "
                     f"Received: activation={name!r}")


def sigmoid(x):
    # exp(-log(1 + exp(-x))) never overflows and keeps full precision for large |x|.
    xp = get_array_module(x)
    return xp.exp(-xp.logaddexp(0, -x)).astype(x.dtype, copy=False)


def softmax(x, axis=-1):
    """``exp(x - max) / sum(exp(x - max))`` over ``axis`` (an int or a tuple of ints)."""
    xp = get_array_module(x)
    if x.size == 0:  # an empty batch (or no features): nothing to normalise, no max
        return x.copy()
    e = xp.exp(x - x.max(axis=axis, keepdims=True))  # shifted: exp never overflows
    return e / e.sum(axis=axis, keepdims=True)


def softmax_forward(x, axis=-1):
    """Softmax over ``axis`` (an int, or several axes normalised together as one).

    forward:  y = exp(x - max) / sum(exp(x - max)), max and sum over ``axis``
    backward: dx = y * (dy - sum_axis(dy * y))      (the softmax Jacobian times dy)
    """
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    y = softmax(x, axis)
    return y, (y, axis)


def softmax_backward(dy, cache):
    y, axis = cache
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def elu_forward(x, alpha=1.0):
    """Exponential linear unit (Keras's ``elu``; ``alpha`` may be any number).

    forward:  y = x                   where x > 0
              y = alpha * (e^x - 1)   elsewhere (expm1: exact for small |x|)
    backward: dx = dy                 where x > 0
              dx = dy * (y + alpha)   elsewhere  (= dy * alpha * e^x; so elu'(0) = alpha)
    """
    xp = get_array_module(x)
    alpha = float(alpha)
    positive = x > 0
    # expm1 of min(x, 0): the branch that is thrown away for x > 0 cannot overflow
    y = xp.where(positive, x, alpha * xp.expm1(xp.minimum(x, 0)))
    return y, (positive, y, alpha)


def elu_backward(dy, cache):
    positive, y, alpha = cache
    return get_array_module(dy).where(positive, dy, dy * (y + alpha))


def leaky_relu_forward(x, negative_slope=0.2):
    """Leaky relu (the default slope is ``keras.activations.leaky_relu``'s, 0.2; the
    LeakyReLU layer's default is 0.3).

    forward:  y = x if x >= 0 else negative_slope * x
    backward: dx = dy if x >= 0 else negative_slope * dy   (slope 1 at x = 0, as JAX)
    """
    xp = get_array_module(x)
    negative_slope = float(negative_slope)
    kept = x >= 0
    return xp.where(kept, x, negative_slope * x), (kept, negative_slope)


def leaky_relu_backward(dy, cache):
    kept, negative_slope = cache
    return get_array_module(dy).where(kept, dy, negative_slope * dy)


def relu_forward(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ReLU with arguments (``keras.activations.relu``, the ReLU layer).

    With ``s = negative_slope``, ``m = max_value`` (None: no ceiling), ``t = threshold``:

    forward:  y = clip(x * [x > t], 0, m) - s * max(t - x, 0)
              i.e. s*(x - t) below t, x from t up to m, m above
    backward: dx = dy * ([x > t] * c(x) + s * [x < t])
              c(x) = 1 for x < m, 1/2 at x == m, 0 above (the slope JAX gives
              ``clip``: a tie of ``minimum`` is split evenly)

    As in Keras, two cases take a shortcut with its own slope at a kink:
    no ``m`` and ``t == 0`` is ``leaky_relu(s)`` (slope 1 at 0; plain relu when
    ``s == 0``: slope 0 at 0), and ``m == 6`` with ``t == 0`` is ``relu6``,
    whose slope at x == 6 is 0. The derivative at a kink is a convention; these
    are the ones Keras's gradients have.
    """
    negative_slope = float(negative_slope)
    threshold = float(threshold)
    if max_value is None and threshold == 0:
        if negative_slope == 0:
            y, cache = activation_forward(x, "relu")
            return y, ("relu", cache)
        y, cache = leaky_relu_forward(x, negative_slope)
        return y, ("leaky_relu", cache)
    xp = get_array_module(x)
    zero, t = x.dtype.type(0), x.dtype.type(threshold)   # Keras casts t to x's type
    y = xp.where(x > t, x, zero) if threshold != 0 else xp.maximum(x, zero)
    if max_value is not None:
        y = xp.minimum(y, x.dtype.type(max_value))
    if negative_slope != 0:
        y = y - negative_slope * xp.maximum(t - x, zero)
    return y, ("general", (x, negative_slope, max_value, threshold))


def relu_backward(dy, cache):
    kind, saved = cache
    if kind == "relu":
        return activation_backward(dy, saved)
    if kind == "leaky_relu":
        return leaky_relu_backward(dy, saved)
    x, negative_slope, max_value, threshold = saved
    xp = get_array_module(x)
    one, zero = x.dtype.type(1), x.dtype.type(0)
    t = x.dtype.type(threshold)
    slope = xp.where(x > t, one, zero)
    if max_value is not None:
        m = x.dtype.type(max_value)
        at_m = zero if (threshold == 0 and max_value == 6) else x.dtype.type(0.5)  # relu6
        slope = slope * xp.where(x < m, one, xp.where(x == m, at_m, zero))
    if negative_slope != 0:
        slope = slope + xp.where(x < t, x.dtype.type(negative_slope), zero)
    return dy * slope


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def gelu_forward(x):
    """Gaussian error linear unit, exact form (Keras's ``gelu``, ``approximate=False``).

    forward:  y = x * Phi(x),  Phi(x) = erfc(-x / sqrt(2)) / 2  (the standard normal CDF)
    backward: dx = dy * (Phi(x) + x * phi(x)),  phi(x) = exp(-x**2 / 2) / sqrt(2 pi)

    Phi is computed in float64 (then rounded to x's type) whatever x's type.
    """
    cdf = 0.5 * erfc(-x.astype("float64", copy=False) * _SQRT_HALF)
    y = (x * cdf).astype(x.dtype, copy=False)
    return y, (x, cdf.astype(x.dtype, copy=False))


def gelu_backward(dy, cache):
    x, cdf = cache
    xp = get_array_module(x)
    return dy * (cdf + x * (xp.exp(-0.5 * x * x) * _INV_SQRT_2PI))


def silu_forward(x):
    """Sigmoid linear unit, also called swish (Keras's ``silu``).

    forward:  y = x * s,  s = sigmoid(x)
    backward: dx = dy * s * (1 + x * (1 - s))   (1 - s computed as sigmoid(-x): near
              s = 1 the difference would keep only a few bits in float32)
    """
    s = sigmoid(x)
    return x * s, (x, s)


def silu_backward(dy, cache):
    x, s = cache
    return dy * (s * (1 + x * sigmoid(-x)))


def softplus_forward(x):
    """Softplus (Keras's ``softplus``), the smooth relu.

    forward:  y = log(1 + e^x), computed as logaddexp(x, 0) = max(x, 0) + log1p(e^-|x|),
              which never overflows (softplus(1000) = 1000) nor loses small values
    backward: dx = dy * sigmoid(x)
    """
    xp = get_array_module(x)
    return xp.logaddexp(x, 0).astype(x.dtype, copy=False), x


def softplus_backward(dy, cache):
    return dy * sigmoid(cache)


# the activation names whose pair is above; called with the defaults of keras.activations
_PAIRS = {"elu": (elu_forward, elu_backward),
          "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
          "gelu": (gelu_forward, gelu_backward),
          "silu": (silu_forward, silu_backward),
          "softplus": (softplus_forward, softplus_backward)}


# what the compiled epilogue knows: the element-wise activations that need one pass
# (the kernel sets' LINEAR, RELU, TANH)
EPILOGUE_KINDS = {"linear": 0, "relu": 1, "tanh": 2}


def _epilogue_kernel(x, name):
    """The kernel set whose epilogue serves this array and activation, or None."""
    fast = kernels_for(x)
    if (fast is None or name not in EPILOGUE_KINDS or x.dtype not in fast.EPILOGUE_DTYPES
            or not x.flags.c_contiguous):
        return None
    return fast


def _bias_row(b, size=256):
    """``b`` repeated to at least ``size`` values: one long row of the bias pattern
    (a long contiguous inner loop for the CPU kernel; the GPU one indexes it modulo)."""
    return get_array_module(b).tile(b, -(-size // b.size)) if b.size else b


def bias_activation_forward(z, b, name, channel_axis=-1):
    """``y = activation(z + b)`` with ``b`` (F,) added along ``channel_axis``; ``b`` may
    be None. ``z`` is the product a layer has just made and may be overwritten.
    Returns ``(y, cache)`` with the cache of ``activation_forward``."""
    axis = channel_axis % z.ndim
    if b is not None and b.shape != (z.shape[axis],):
        raise ValueError(f"bias_activation: bias of shape {tuple(b.shape)} does not match "
                         f"{z.shape[axis]} channels on axis {axis} of {tuple(z.shape)}")
    if b is None and name == "linear":
        return z, (name, None)  # nothing to add, nothing to apply
    fast = _epilogue_kernel(z, name)
    if fast is not None and (b is None or axis == z.ndim - 1):
        xp = get_array_module(z)
        bias = xp.empty(0, z.dtype) if b is None else _bias_row(b.astype(z.dtype, copy=False))
        fast.bias_activation(z.reshape(-1), bias, EPILOGUE_KINDS[name])
        # relu keeps its output: y > 0 exactly where z + b > 0
        return z, (name, None if name == "linear" else z)
    if b is not None:
        z += b.reshape((-1,) + (1,) * (z.ndim - 1 - axis))
    return activation_forward(z, name)


def activation_forward(x, name):
    """``y = name(x)`` for a name of ACTIVATIONS. Returns ``(y, cache)``; the cache
    keeps what the derivative needs: the input for relu, the output for tanh,
    sigmoid and softmax, the cache of the op's pair (``elu_forward``, ...) for the
    others."""
    xp = get_array_module(x)
    if name == "linear":
        return x, (name, None)
    fast = _epilogue_kernel(x, name)
    if fast is not None:
        y = x.copy()
        fast.bias_activation(y.reshape(-1), xp.empty(0, x.dtype), EPILOGUE_KINDS[name])
        return y, (name, y)
    if name == "relu":
        return xp.maximum(x, 0), (name, x)
    if name == "tanh":
        y = xp.tanh(x)
    elif name == "sigmoid":
        y = sigmoid(x)
    elif name == "softmax":
        y = softmax(x)
    elif name in _PAIRS:
        y, saved = _PAIRS[name][0](x)
        return y, (name, saved)
    else:
        raise ValueError(f"unknown activation {name!r}; expected one of {list(ACTIVATIONS)}")
    return y, (name, y)


def activation_backward(dy, cache):
    """dL/dx for the ``(name, saved)`` cache of ``activation_forward``."""
    name, saved = cache
    if name == "linear":
        return dy
    if name in _PAIRS:
        return _PAIRS[name][1](dy, saved)
    if name in ("relu", "tanh"):
        fast = _epilogue_kernel(dy, name)
        if fast is not None and saved.dtype == dy.dtype and saved.flags.c_contiguous:
            dz = get_array_module(dy).empty_like(dy)
            fast.activation_gradient(dy.reshape(-1), saved.reshape(-1), EPILOGUE_KINDS[name],
                                     dz.reshape(-1))
            return dz
    if name == "relu":
        return dy * (saved > 0)
    if name == "tanh":
        return dy * (1 - saved * saved)
    if name == "sigmoid":
        return dy * saved * (1 - saved)
    # softmax
    return saved * (dy - (dy * saved).sum(axis=-1, keepdims=True))
