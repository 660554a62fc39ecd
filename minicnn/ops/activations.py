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
"""
from ..backend import get_array_module

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
    e = xp.exp(x - x.max(axis=-1, keepdims=True))  # shifted: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


def activation_forward(x, name):
    """Returns ``(y, cache)``. The cache keeps what the derivative needs:
    the input for relu, the output for the others."""
    xp = get_array_module(x)
    if name == "linear":
        return x, (name, None)
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
    if name == "relu":
        return dy * (saved > 0)
    if name == "tanh":
        return dy * (1 - saved * saved)
    if name == "sigmoid":
        return dy * saved * (1 - saved)
    # softmax
    return saved * (dy - (dy * saved).sum(axis=-1, keepdims=True))
