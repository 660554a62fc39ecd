"""Loss objects, Keras-style: ``loss(y_true, y_pred) -> float`` (the batch mean) and
``loss.gradient(y_true, y_pred)`` (dL/dy_pred of that mean).

The arithmetic lives in ``minicnn.ops.losses``; see its docstring for Keras's
renormalize-then-clip rule and for how the softmax + cross-entropy gradient is fused.
"""

from .backend import as_array, to_host
from .ops import losses as L


class Loss:
    name = "loss"

    def __call__(self, y_true, y_pred):
        y_true, y_pred = self.prepare(y_true, y_pred)
        return float(to_host(self.per_sample(y_true, y_pred).mean()))

    def prepare(self, y_true, y_pred):
        """Check the shapes (no broadcasting) and cast; returns ``(y_true, y_pred)``."""
        y_true, y_pred = as_array(y_true), as_array(y_pred)
        for what, a in (("y_true", y_true), ("y_pred", y_pred)):
            if a.dtype.kind not in "biuf":
                raise TypeError(f"{type(self).__name__}: {what} must be a real numeric array, "
                                f"received dtype {a.dtype}")
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype("float64")
        if y_pred.ndim < 1 or y_pred.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: y_pred must be a non-empty batch. "
                             f"Received: y_pred.shape={tuple(y_pred.shape)}")
        self._check_shapes(y_true, y_pred)
        return self._cast_targets(y_true, y_pred), y_pred

    def _cast_targets(self, y_true, y_pred):
        return y_true.astype(y_pred.dtype, copy=False)

    def check_targets(self, y_true, output_shape, owner):
        """All of a data set's targets checked at once against a model's output sample
        shape (one vectorised pass, before training changes anything); the error
        names ``owner``."""
        y_true = as_array(y_true)
        if y_true.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: targets must be a real numeric array, received dtype "
                            f"{y_true.dtype}")
        if tuple(y_true.shape[1:]) != tuple(output_shape):
            raise ValueError(f"{owner}: targets of shape {tuple(y_true.shape)} do not fit the "
                             f"model's outputs of shape (N, "
                             f"{', '.join(map(str, output_shape))}) (no broadcasting)")

    def gradient(self, y_true, y_pred):
        """dL/dy_pred of the batch-mean loss."""
        return self.prepared_gradient(*self.prepare(y_true, y_pred))

    def prepared_gradient(self, y_true, y_pred):
        """The gradient for targets that have been through ``prepare`` already."""
        raise NotImplementedError

    def _check_shapes(self, y_true, y_pred):
        if tuple(y_true.shape) != tuple(y_pred.shape):
            raise ValueError(f"{type(self).__name__}: y_true and y_pred must have the same "
                             f"shape (no broadcasting). Received: y_true.shape="
                             f"{tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}")

    def get_config(self):
        return {}


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot targets; ``y_pred`` are probabilities unless
    ``from_logits=True``."""
    name = "categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def dense_targets(self, y_true, y_pred):
        return y_true

    def per_sample(self, y_true, y_pred):
        y = self.dense_targets(y_true, y_pred)
        if self.from_logits:
            return L.categorical_crossentropy_from_logits(y, y_pred)
        return L.categorical_crossentropy(y, y_pred)

    def prepared_gradient(self, y_true, y_pred):
        y = self.dense_targets(y_true, y_pred)
        if self.from_logits:  # (softmax(z) * sum(y) - y) / N: (p - y) / N for one-hot y
            return L.categorical_crossentropy_from_logits_backward(y, y_pred)
        return L.categorical_crossentropy_backward(y, y_pred)

    def get_config(self):
        return {"from_logits": self.from_logits}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Cross-entropy against integer labels of shape (N,) or (N, 1)."""
    name = "sparse_categorical_crossentropy"

    def _check_shapes(self, y_true, y_pred):
        n = y_pred.shape[0]
        if y_pred.ndim != 2 or tuple(y_true.shape) not in ((n,), (n, 1)):
            raise ValueError(f"{type(self).__name__}: expected integer labels of shape "
                             f"({n},) or ({n}, 1) for y_pred of shape (N, classes). Received: "
                             f"y_true.shape={tuple(y_true.shape)}, "
                             f"y_pred.shape={tuple(y_pred.shape)}")

    def check_targets(self, y_true, output_shape, owner):
        y_true = as_array(y_true)
        if len(output_shape) != 1:
            raise ValueError(f"{owner}: sparse labels need outputs of shape (N, classes); the "
                             f"model's are (N, {', '.join(map(str, output_shape))})")
        if y_true.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: sparse labels must be integers, received dtype "
                            f"{y_true.dtype}")
        if len(y_true):
            L.check_labels(y_true, output_shape[0], owner)

    def _cast_targets(self, y_true, y_pred):
        # Checked here, once, wherever they are: a model prepares its labels on the host,
        # before moving them, so a GPU never has to report their values back.
        return L.check_labels(y_true, y_pred.shape[-1], type(self).__name__)

    def dense_targets(self, y_true, y_pred):
        return L.one_hot(y_true, y_pred.shape[-1], y_pred.dtype, type(self).__name__,
                         checked=True)


class BinaryCrossentropy(Loss):
    """Keras 3's binary cross-entropy: per element ``-(y log c + (1 - y) log(1 - c))``
    with ``c = clip(p, 1e-7, 1 - 1e-7)`` (no renormalization), or from logits
    ``y softplus(-z) + (1 - y) softplus(z)`` with ``from_logits=True``; averaged over
    the last axis per sample, then over the batch. Targets have the outputs' shape
    (0/1 labels, or soft targets in [0, 1]). A model whose last layer is a sigmoid
    walks back through the sigmoid from the probabilities' gradient, as Keras's
    autodiff does (so a sample whose clipped probability saturates sends back 0)."""
    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def per_sample(self, y_true, y_pred):
        if self.from_logits:
            return L.binary_crossentropy_from_logits(y_true, y_pred)
        return L.binary_crossentropy(y_true, y_pred)

    def prepared_gradient(self, y_true, y_pred):
        if self.from_logits:
            return L.binary_crossentropy_from_logits_backward(y_true, y_pred)
        return L.binary_crossentropy_backward(y_true, y_pred)

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """Mean of squared errors: per sample over the last axis, then over the batch."""
    name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        return L.mean_squared_error(y_true, y_pred)

    def prepared_gradient(self, y_true, y_pred):
        return L.mean_squared_error_backward(y_true, y_pred)


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}

# the classes a model file may name: looked up here only, never as attributes
CLASSES = {cls.__name__: cls for cls in (BinaryCrossentropy, CategoricalCrossentropy,
                                         SparseCategoricalCrossentropy, MeanSquaredError)}


def get(identifier):
    """A loss name or instance -> a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown loss; expected a Loss instance or one of {sorted(_BY_NAME)}. "
                     f"Received: loss={identifier!r}")


binary_crossentropy = BinaryCrossentropy()
categorical_crossentropy = CategoricalCrossentropy()
sparse_categorical_crossentropy = SparseCategoricalCrossentropy()
mean_squared_error = mse = MeanSquaredError()
