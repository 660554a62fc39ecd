"""The weights part of the layer protocol (mixed into ``Layer``): creating them in
``build`` (``add_weight``), declaring their shapes without creating them (a loader
sizes a file's architecture first), reading and replacing them in Keras's order."""
import numpy as np

from ..backend import to_device, to_host


class Weights:
    """A layer's weights: ``self._weights`` is ``[(name, array, trainable)]``."""

    _declaring = None  # a list while declared_weight_shapes runs _build

    def declared_weight_shapes(self, input_shape):
        """The shapes of the weights ``build(input_shape)`` would create, without creating
        any: a loader sizes the architecture a file declares before building it."""
        shape = self._validated_sample_shape(input_shape, "input_shape")
        self._check_input_shape(shape)
        self._declaring = []
        try:
            self._build(shape)
            return self._declaring
        finally:
            self._declaring = None

    def add_weight(self, name, shape, initializer, trainable=True):
        if self._declaring is not None:
            self._declaring.append(tuple(int(d) for d in shape))
            return None
        value = to_device(initializer(shape, self.dtype), dtype=self.dtype)
        self._weights.append((name, value, trainable))
        return value

    def _weight(self, name):
        for wname, value, _ in self._weights:
            if wname == name:
                return value
        return None

    def _replace_weight(self, name, value):
        self._weights = [(n, value if n == name else v, t) for n, v, t in self._weights]

    @property
    def weights(self):
        """The weight arrays (backend arrays, not copies), in Keras order."""
        return [v for _, v, _ in self._weights]

    @property
    def trainable_weights(self):
        return [v for _, v, t in self._weights if t] if self._trainable else []

    @property
    def non_trainable_weights(self):
        """The weights no optimizer changes: BatchNormalization's moving statistics, and
        every weight of a frozen layer."""
        return [v for _, v, t in self._weights if not (t and self._trainable)]

    @property
    def weight_names(self):
        return [n for n, _, _ in self._weights]

    def count_params(self):
        if not self.built:
            raise self._error(ValueError, "count_params() needs the layer to be built; call "
                                          "build(input_shape) or forward() first")
        return int(sum(int(np.prod(v.shape)) for v in self.weights))

    def get_weights(self):
        return [to_host(v).copy() for v in self.weights]

    def set_weights(self, weights):
        if not self.built:
            raise self._error(ValueError, "set_weights() needs the layer to be built; call "
                                          "build(input_shape) first")
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise self._error(ValueError, f"set_weights expected {len(self._weights)} arrays "
                                          f"{self.weight_names}, received {len(weights)}")
        new = []
        for (name, old, trainable), value in zip(self._weights, weights):
            value = np.asarray(to_host(value))
            if value.shape != tuple(old.shape):
                raise self._error(ValueError, f"weight '{name}' expected shape "
                                              f"{tuple(old.shape)}, received {value.shape}")
            if value.dtype.kind not in "biuf":
                raise self._error(TypeError, f"weight '{name}' must be a real numeric array, "
                                             f"received dtype {value.dtype}")
            new.append((name, to_device(value, dtype=self.dtype).copy(), trainable))
        self._weights = new
