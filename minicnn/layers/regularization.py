"""The regularizer part of the layer protocol (mixed into ``Layer``).

Regularizers (``minicnn.regularizers``): every layer takes ``activity_regularizer``.
Its forward then records the penalty of its output divided by the batch size (Keras
3's rule), and its backward adds that penalty's gradient to the ``dy`` arriving at
the output. A layer called several times in a model (shared) counts only its *last*
call's activity penalty, in the loss and in the gradient: what Keras 3.15 on JAX
computes (observed, and checked in tests/test_regularizers.py).

Weight regularizers (``kernel_regularizer``, ``bias_regularizer`` of Conv2D and
Dense) are read by the model's training step (``minicnn.trainer``), which adds their
penalties to the loss and their gradients to the weights' gradients;
``get_gradients()`` includes them too. ``get_config()`` of every layer lists a set
``activity_regularizer`` serialized (Keras's dict), added by ``__init_subclass__`` so
that no subclass has to remember it.
"""
import functools

from .. import regularizers


class Regularization:
    """Activity and weight regularizers of a layer."""

    def __init_subclass__(cls, **kwargs):
        """Every subclass's own ``get_config`` also lists a set activity_regularizer."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("get_config")
        if own is None or getattr(own, "_lists_activity", False):
            return

        @functools.wraps(own)
        def get_config(self):
            config = own(self)
            reg = getattr(self, "_activity_regularizer", None)
            if reg is not None and "activity_regularizer" not in config:
                config = dict(config, activity_regularizer=regularizers.serialize(reg))
            return config
        get_config._lists_activity = True
        cls.get_config = get_config

    # -- regularizers --------------------------------------------------------------
    @property
    def activity_regularizer(self):
        """The penalty on this layer's output (``minicnn.regularizers``), or None;
        settable as in Keras with anything ``regularizers.get`` takes."""
        return self._activity_regularizer

    @activity_regularizer.setter
    def activity_regularizer(self, value):
        self._activity_regularizer = regularizers.get(
            value, f"{type(self).__name__}: activity_regularizer")

    # which attribute regularizes which weight (Conv2D and Dense set these attributes)
    _WEIGHT_REGULARIZERS = {"kernel": "kernel_regularizer", "bias": "bias_regularizer"}

    def weight_regularizers(self):
        """The regularizer of each trainable weight (None where it has none), in
        ``trainable_weights`` order."""
        if not self._trainable:
            return []
        return [getattr(self, self._WEIGHT_REGULARIZERS.get(n, ""), None)
                for n, _, t in self._weights if t]

    def weight_penalty(self):
        """The sum of the trainable weights' penalties (a 0-d array), or None."""
        total = None
        for w, reg in zip(self.trainable_weights, self.weight_regularizers()):
            if reg is not None:
                total = reg(w) if total is None else total + reg(w)
        return total

    def _record_activity(self, y):
        """After a forward: the output's penalty / batch size, kept for the loss, and
        the output, kept for the backward pass (released with the cache). An earlier
        call's output is dropped from its box: it no longer counts (Keras's rule)."""
        penalty = self._activity_regularizer(y)
        self._activity_loss = (penalty / penalty.dtype.type(len(y)) if len(y) else
                               penalty * 0)  # Keras: divide_no_nan
        self._activity_box[0] = None
        self._activity_box = [y]

    def activity_penalty(self):
        """The activity penalty / batch size of the last forward (a 0-d array), or None."""
        if self._activity_regularizer is None:
            return None
        return self._activity_loss

    def _with_activity_gradient(self, dy):
        """``dy`` plus d(activity penalty / N)/d(output), where the layer has an
        activity regularizer: the penalty is a term of the loss that depends on the
        output directly, so its gradient joins the one coming down from the loss."""
        y = self._activity_box[0]
        if self._activity_regularizer is None or y is None or len(y) == 0:
            return dy
        return dy + self._activity_regularizer.gradient(y) / y.dtype.type(len(y))
