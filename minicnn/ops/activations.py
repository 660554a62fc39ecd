"""Element-wise activations and softmax, each a forward/backward pair.

| name      | forward                  | backward: dx =                  |
|-----------|--------------------------|---------------------------------|
| linear    | x                        | dy                              |
| relu      | max(x, 0)                | dy * [x > 0]   (relu'(0) = 0)   |
| tanh      | tanh(x)                  | dy * (1 - y**2)                 |
| sigmoid   | 1 / (1 + exp(-x))        | dy * y * (1 - y)                |
| softmax   | exp(x - max) / sum(...)  | y * (dy - sum(dy * y))          |

softmax acts on the last axis; its backward is the Jacobian-vector product
``diag(y) - y y^T`` applied to dy, written without building the Jacobian.
The relu gradient of the kernels (numba's and CUDA's) selects: exactly 0 where
x <= 0 even for an infinite or NaN dy, where NumPy's ``dy * [x > 0]`` gives NaN.

``bias_activation_forward`` is the epilogue of Conv2D and Dense: ``activation(z + b)``.
Where the backend has a kernel for it (linear/relu/tanh; numba: float32, CUDA: float32
and float64) it is one pass (``bias_activation`` of the kernel set) instead of a
broadcast add and an activation. numba's tanh is the rational approximation XLA (and
so Keras on JAX) uses, within 3.3e-7 of the exact value; float64 on the CPU always
uses NumPy's tanh, and CUDA uses its own tanhf/tanh.
"""
from ..backend import get_array_module, kernels_for

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")


def normalize_activation(name, owner=None):
    """None or a case-insensitive name -> one of ACTIVATIONS."""
    if name is None:
        return "linear"
    if isinstance(name, str) and name.lower() in ACTIVATIONS:
        return name.lower()
    prefix = f"{owner}: " if owner else ""
    raise ValueError(f"{prefix}unknown activation; expected None or one of "
                     f"{list(ACTIVATIONS)}. Received: activation={name!r}")


def sigmoid(x):
    # exp(-log(1 + exp(-x))) never overflows and keeps full precision for large |x|.
    xp = get_array_module(x)
    return xp.exp(-xp.logaddexp(0, -x)).astype(x.dtype, copy=False)


def softmax(x):
    xp = get_array_module(x)
    if x.size == 0:  # an empty batch (or no features): nothing to normalise, no max
        return x.copy()
    e = xp.exp(x - x.max(axis=-1, keepdims=True))  # shifted: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


# what the compiled epilogue knows: the element-wise activations that need one pass
_KERNEL_KINDS = {"linear": 0, "relu": 1, "tanh": 2}


def _epilogue_kernel(x, name):
    """The kernel set whose epilogue serves this array and activation, or None."""
    fast = kernels_for(x)
    if (fast is None or name not in _KERNEL_KINDS or x.dtype not in fast.EPILOGUE_DTYPES
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
        fast.bias_activation(z.reshape(-1), bias, _KERNEL_KINDS[name])
        # relu keeps its output: y > 0 exactly where z + b > 0
        return z, (name, None if name == "linear" else z)
    if b is not None:
        z += b.reshape((-1,) + (1,) * (z.ndim - 1 - axis))
    return activation_forward(z, name)


def activation_forward(x, name):
    """Returns ``(y, cache)``. The cache keeps what the derivative needs:
    the input for relu, the output for the others."""
    xp = get_array_module(x)
    if name == "linear":
        return x, (name, None)
    fast = _epilogue_kernel(x, name)
    if fast is not None:
        y = x.copy()
        fast.bias_activation(y.reshape(-1), xp.empty(0, x.dtype), _KERNEL_KINDS[name])
        return y, (name, y)
    if name == "relu":
        return xp.maximum(x, 0), (name, x)
    if name == "tanh":
        y = xp.tanh(x)
    elif name == "sigmoid":
        y = sigmoid(x)
    elif name == "softmax":
        y = softmax(x)
    else:
        raise ValueError(f"unknown activation {name!r}; expected one of {list(ACTIVATIONS)}")
    return y, (name, y)


def activation_backward(dy, cache):
    name, saved = cache
    if name == "linear":
        return dy
    if name in ("relu", "tanh"):
        fast = _epilogue_kernel(dy, name)
        if fast is not None and saved.dtype == dy.dtype and saved.flags.c_contiguous:
            dz = get_array_module(dy).empty_like(dy)
            fast.activation_gradient(dy.reshape(-1), saved.reshape(-1), _KERNEL_KINDS[name],
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
