"""Accuracy, for one-hot and integer labels, as Keras's "accuracy" resolves it."""


def accuracy_values(y_true, y_pred):
    """Per-sample 1.0 / 0.0 correctness.

    - one-hot (or soft) targets shaped like y_pred: argmax(y_true) == argmax(y_pred)
    - integer labels (N,) or (N, 1) with y_pred (N, K): label == argmax(y_pred)
    - a single output unit (N, 1): (y_pred > 0.5) == y_true, as binary accuracy
    """
    if y_pred.shape[-1] == 1 and tuple(y_true.shape) == tuple(y_pred.shape):
        return ((y_pred > 0.5) == (y_true > 0.5)).reshape(len(y_pred)).astype("float64")
    predicted = y_pred.argmax(axis=-1)
    if tuple(y_true.shape) == tuple(y_pred.shape):
        return (y_true.argmax(axis=-1) == predicted).astype("float64")
    return (y_true.reshape(predicted.shape) == predicted).astype("float64")


_BY_NAME = {"accuracy": accuracy_values, "acc": accuracy_values}


def get(identifier):
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return "accuracy", _BY_NAME[identifier.lower()]
    raise ValueError(f"unknown metric; expected one of {sorted(_BY_NAME)}. "
                     f"Received: metric={identifier!r}")
