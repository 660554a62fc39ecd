"""BatchNormalization over ``minicnn.ops.batchnorm``."""
import math
import numbers

from .. import initializers
from ..ops import batchnorm as _ops
from .base import Layer, _format_shape


class BatchNormalization(Layer):
    """Normalizes each channel (``axis``) with the batch's mean and biased variance
    in training, and with the moving averages at inference.

    Weights, in Keras order: gamma (if scale), beta (if center), moving_mean,
    moving_variance. The moving statistics change only in ``forward(x, training=True)``:
    ``moving = momentum * moving + (1 - momentum) * batch_statistic``.

    ``synchronized=True`` (Keras's argument): in data-parallel training the batch
    statistics are those of every rank's rows together (``minicnn.distributed``); on
    one process it changes nothing.
    """
    has_weights = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 synchronized=False, input_shape=None, name=None, **kwargs):
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"BatchNormalization: axis must be an int. Received: axis={axis!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) \
                or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1]. "
                             f"Received: momentum={momentum!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) \
                or not math.isfinite(epsilon) or epsilon <= 0:
            raise ValueError(f"BatchNormalization: epsilon must be positive. "
                             f"Received: epsilon={epsilon!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        if not isinstance(synchronized, bool):
            raise TypeError(f"BatchNormalization: synchronized must be True or False. "
                            f"Received: synchronized={synchronized!r}")
        self.synchronized = synchronized
        self.communicator = None  # synchronized: the ranks (default: distributed.init())
        self._sum_over_halves = None  # set on the copies of a two-thread step (split_step)
        # set by a model's graph for one forward call when a relu follows (minicnn.network)
        self._relu_next = False
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _sample_axis(self, sample_rank):
        """The channel axis within a sample shape (the batch axis is not normalized)."""
        full = self.axis if self.axis >= 0 else self.axis + sample_rank + 1
        return full - 1

    def _check_input_shape(self, shape):
        self._require_rank(shape, (2,), "(batch, ..., channels)")
        axis = self._sample_axis(len(shape))
        if not 0 <= axis < len(shape):
            raise self._error(ValueError, f"axis={self.axis} is not a channel axis of an input "
                                          f"of shape {_format_shape((None,) + shape)} (the batch "
                                          f"axis cannot be normalized)")
        if shape[axis] is None:
            raise self._error(ValueError, f"the size of axis {self.axis} must be known, "
                                          f"received shape {_format_shape((None,) + shape)}")

    def _fixed_axes(self, sample_rank):
        return (self._sample_axis(sample_rank),)

    def _build(self, shape):
        channels = (shape[self._sample_axis(len(shape))],)
        if self.scale:
            self.add_weight("gamma", channels, initializers.Ones())
        if self.center:
            self.add_weight("beta", channels, initializers.Zeros())
        self.add_weight("moving_mean", channels, initializers.Zeros(), trainable=False)
        self.add_weight("moving_variance", channels, initializers.Ones(), trainable=False)

    def _forward(self, x, training):
        training = training and self.trainable  # frozen: inference mode, as in Keras 3
        if training and x.shape[0] == 0:
            raise self._error(ValueError, "cannot compute batch statistics of an empty batch "
                                          f"(received shape {tuple(x.shape)})")
        y, self._cache, (mean, var) = _ops.batchnorm_forward(
            x, self._weight("gamma"), self._weight("beta"), self._weight("moving_mean"),
            self._weight("moving_variance"), axis=self._sample_axis(x.ndim - 1) + 1,
            momentum=self.momentum, epsilon=self.epsilon, training=training,
            sum_over_ranks=self._sum_over_ranks(), relu=self._relu_next)
        if training:
            self._replace_weight("moving_mean", mean.astype(self.dtype, copy=False))
            self._replace_weight("moving_variance", var.astype(self.dtype, copy=False))
        return y

    def relu_applied(self):
        """Whether the last forward pass also applied the relu that follows it."""
        return self._cache is not None and _ops.relu_applied(self._cache)

    def _sum_over_ranks(self):
        """With ``synchronized=True`` in a run of several ranks, the function that adds
        a statistic over them (Keras's argument: the batch is every rank's rows). In
        a half of a two-thread step, the function that adds it over the two halves
        (``minicnn.split_step``)."""
        if self._sum_over_halves is not None:
            return self._sum_over_halves
        if not self.synchronized:
            return None
        if self.communicator is None:
            from ..distributed import init
            self.communicator = init()
        return self.communicator.sum if self.communicator.size > 1 else None

    def _backward(self, dy):
        dx, dgamma, dbeta = _ops.batchnorm_backward(dy, self._cache)
        self._set_gradients([g for g in (dgamma, dbeta) if g is not None])
        return dx

    def get_config(self):
        return {"name": self.name, "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "synchronized": self.synchronized}
