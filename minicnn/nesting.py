"""A model used as a layer of another model.

Keras lets a model stand wherever a layer can: ``Sequential([base, Softmax()])``,
``y = encoder(inputs)`` in a functional graph, one model called on two inputs. The
outer graph (``minicnn.network``) asks of each node's layer what it asks of any
layer: ``forward``, ``backward``, its weights and their gradients, its output shape,
a cache to release. ``AsLayer`` answers for a model by handing each question to the
model's own graph and layers, so backprop runs *through* the inner model: the
gradient arriving at its output walks its graph backwards, its layers keep their
weight gradients, and the outer optimizer updates them with everyone else's.
Freezing the inner model (``inner.trainable = False``) freezes its layers, as Keras
does.
"""
from . import backend


class AsLayer:
    """The layer protocol for ``Model`` (see the module docstring)."""

    has_weights = True
    fixed_rank = True

    @property
    def dtype(self):
        return backend.floatx()

    @property
    def input_shape_arg(self):
        """A built model's input sample shape: the first entry of a Sequential model
        needs no ``input_shape`` when it is a built model."""
        return tuple(self._sample_in) if self.built and self._single_input else None

    def _who(self):
        return f"{type(self).__name__} '{self.name}'"

    def compute_output_shape(self, input_shape):
        """The output's sample shape for inputs of sample shape ``input_shape``: the
        model's own, once the shape is checked against the one it was built for."""
        if not self.built:
            self.build(input_shape)
        samples = input_shape if not self._single_input else [input_shape]
        expected = [self._sample_in] if self._single_input else self._sample_in
        if len(samples) != len(expected) or any(
                len(s) != len(e) or any(a is not None and a != b for a, b in zip(e, s))
                for s, e in zip(samples, expected)):
            raise ValueError(f"{self._who()}: called on inputs of sample shape "
                             f"{input_shape}, but it was built for {self._sample_in}")
        if not self._single_output:
            raise NotImplementedError(f"{self._who()}: a model with several outputs used as "
                                      f"a layer is not implemented in minicnn yet")
        return tuple(self._sample_out)

    def declared_weight_shapes(self, input_shape):
        """None to declare: a model inside a model being loaded was built, and its
        weights counted against the memory limit, before the outer one is sized."""
        self.compute_output_shape(input_shape)
        return []

    def release_cache(self):
        self._release_caches()

    def call_state(self):
        """Every inner layer's cache and the inner graph's kept calls: a model called
        twice in a graph (shared) keeps one of these per call."""
        return ([layer.call_state() for layer in self._layers],
                dict(self._graph._saved))

    def restore_call_state(self, state):
        states, saved = state
        for layer, one in zip(self._layers, states):
            layer.restore_call_state(one)
        self._graph._saved = dict(saved)

    @property
    def _grads(self):
        """The inner layers' gradients in trainable-weight order (zeros where none
        arrived), as a layer's ``_grads``."""
        return self.gradients_of(self._layers)

    @_grads.setter
    def _grads(self, grads):
        if grads is None:
            for layer in self._layers:
                layer._grads = None
            return
        grads, start = list(grads), 0
        for layer in self._layers:
            count = len(layer.trainable_weights)
            if count:
                layer._grads = grads[start:start + count]
                start += count

    @property
    def _weights(self):
        """A snapshot of every inner layer's weight list (to put back after a step
        whose loss was not finite)."""
        return [list(layer._weights) for layer in self._layers]

    @_weights.setter
    def _weights(self, kept):
        for layer, weights in zip(self._layers, kept):
            layer._weights = weights

    @property
    def weight_names(self):
        """Each weight's name, as ``<layer>/<weight>`` (weights in Keras's order)."""
        return [f"{layer.name}/{name}" for layer in self._layers for name in layer.weight_names]

    def get_gradients(self):
        from .backend import to_host
        return [to_host(g) for g in self._grads]
