"""Merge layers: several inputs of one shape (Concatenate: one shape but the axis)
become one output, as Keras's ``Add``, ``Subtract``, ``Multiply``, ``Average``,
``Maximum``, ``Minimum`` and ``Concatenate``.

Their forward takes a list of arrays and their backward returns a list of gradients,
one per input:

| layer       | forward y =             | backward: dx_i =                                   |
|-------------|-------------------------|----------------------------------------------------|
| Add         | x_0 + x_1 + ...         | dy                                                 |
| Subtract    | x_0 - x_1 (two inputs)  | dy, -dy                                            |
| Multiply    | x_0 * x_1 * ...         | dy * (product of the other inputs)                 |
| Average     | (x_0 + ... ) / n        | dy / n                                             |
| Maximum     | max(max(x_0, x_1), ...) | pairwise: dy to the larger side, half each on a tie |
| Minimum     | min(min(x_0, x_1), ...) | pairwise: dy to the smaller side, half each on a tie|
| Concatenate | [x_0, x_1, ...] on axis | the slice of dy that came from x_i                 |

An ``Add`` is what a residual connection is: ``y = x + f(x)``; its backward hands the
same dy to both branches, and where the branches meet again at ``x`` the model adds
their gradients (see ``minicnn.network``).
"""
from .. import backend
from ..backend import to_device
from .base import Layer, _format_shape


class _Merge(Layer):
    """Base class: a list of inputs of equal shapes, forward and backward over lists."""
    fixed_rank = False
    min_inputs = 2

    def _check_shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or len(shapes) < self.min_inputs or \
                not all(isinstance(s, (list, tuple)) for s in shapes):
            raise self._error(ValueError, f"expects a list of at least {self.min_inputs} "
                                          f"input shapes. Received: {shapes!r}")
        shapes = [self._validated_sample_shape(s, "input_shape") for s in shapes]
        self._check_merge_shapes(shapes)
        return shapes

    def _check_merge_shapes(self, shapes):
        if any(s != shapes[0] for s in shapes):
            raise self._error(ValueError, f"expects inputs of one shape. Received: "
                                          f"{[_format_shape((None,) + s) for s in shapes]}")

    def compute_output_shape(self, input_shape):
        return self._merged_shape(self._check_shapes(input_shape))

    def _merged_shape(self, shapes):
        return shapes[0]

    def declared_weight_shapes(self, input_shape):
        self._check_shapes(input_shape)
        return []

    def build(self, input_shape):
        shapes = self._check_shapes(input_shape)
        self.dtype = backend.floatx()
        self._weights = []
        self.input_shape = tuple(shapes)
        self.built = True

    def forward(self, inputs, training=False):
        if not isinstance(inputs, (list, tuple)):
            raise self._error(TypeError, f"expects a list of inputs. Received: "
                                         f"{type(inputs).__name__}")
        xs = [self._as_array(x, f"input {i}") for i, x in enumerate(inputs)]
        for i, x in enumerate(xs):
            self._check_data(x, f"input {i}")
        shapes = [tuple(x.shape[1:]) for x in xs]
        if not self.built:
            self.build(shapes)
        else:
            self._check_shapes(shapes)
        if any(len(x) != len(xs[0]) for x in xs):
            raise self._error(ValueError, f"expects inputs of one batch size. Received: "
                                          f"{[len(x) for x in xs]}")
        xs = [to_device(x, dtype=self.dtype) for x in xs]
        y = self._on_device(lambda: self._merge(xs), len(xs[0]), "forward")
        self._out_shape = tuple(y.shape)
        self._cache_on_device = backend.get_backend() == "cupy"
        return y

    def backward(self, dy, input_gradient=True):
        dy = self._checked_dy(dy)
        return self._on_device(lambda: self._split(to_device(dy, dtype=self.dtype)), len(dy),
                               "backward")

    def get_config(self):
        return {"name": self.name}


class Add(_Merge):
    """y = x_0 + x_1 + ...; every input's gradient is dy."""

    def _merge(self, xs):
        self._cache = len(xs)
        y = xs[0].copy()
        for x in xs[1:]:
            y += x
        return y

    def _split(self, dy):
        return [dy] * self._cache


class Subtract(_Merge):
    """y = x_0 - x_1 (exactly two inputs)."""

    def _check_merge_shapes(self, shapes):
        if len(shapes) != 2:
            raise self._error(ValueError, f"expects exactly 2 inputs. Received: {len(shapes)}")
        super()._check_merge_shapes(shapes)

    def _merge(self, xs):
        return xs[0] - xs[1]

    def _split(self, dy):
        return [dy, -dy]


class Multiply(_Merge):
    """y = x_0 * x_1 * ...; dx_i = dy times the product of the other inputs."""

    def _merge(self, xs):
        self._cache = xs
        y = xs[0].copy()
        for x in xs[1:]:
            y *= x
        return y

    def _split(self, dy):
        grads = []
        for i in range(len(self._cache)):
            g = dy.copy()
            for j, x in enumerate(self._cache):
                if j != i:
                    g *= x
            grads.append(g)
        return grads


class Average(_Merge):
    """y = (x_0 + ... + x_{n-1}) / n; dx_i = dy / n."""

    def _merge(self, xs):
        self._cache = len(xs)
        y = xs[0].copy()
        for x in xs[1:]:
            y += x
        return y / len(xs)

    def _split(self, dy):
        return [dy / self._cache] * self._cache


class _Extreme(_Merge):
    """The element-wise maximum (minimum) of the inputs, taken pairwise as Keras does:
    ``max(max(x_0, x_1), x_2)``. Each pairwise step sends dy to the larger side and, on a
    tie, half to each (JAX's rule, so Keras's gradients): three equal inputs get 1/4,
    1/4 and 1/2."""
    take_max = True

    def _merge(self, xs):
        xp = backend.get_array_module(xs[0])
        partial = [xs[0]]
        for x in xs[1:]:
            partial.append(xp.maximum(partial[-1], x) if self.take_max
                           else xp.minimum(partial[-1], x))
        self._cache = (xs, partial)
        return partial[-1]

    def _split(self, dy):
        xs, partial = self._cache
        grads, g = [None] * len(xs), dy
        for i in range(len(xs) - 1, 0, -1):
            a, b = partial[i - 1], xs[i]
            a_wins = (a > b) if self.take_max else (a < b)
            tie = (a == b) * 0.5
            grads[i] = g * (~a_wins & (a != b)) + g * tie
            g = g * a_wins + g * tie
        grads[0] = g
        return [grad.astype(dy.dtype, copy=False) for grad in grads]


class Maximum(_Extreme):
    """y = max(x_0, x_1, ...), element-wise."""
    take_max = True


class Minimum(_Extreme):
    """y = min(x_0, x_1, ...), element-wise."""
    take_max = False


class Concatenate(_Merge):
    """The inputs side by side along ``axis`` (default -1, the channels of images);
    backward cuts dy back into the inputs' slices."""

    def __init__(self, axis=-1, **kwargs):
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"Concatenate: axis must be an int. Received: axis={axis!r}")
        if axis == 0:
            raise ValueError("Concatenate: axis=0 is the batch axis; concatenate along a "
                             "feature axis (1, 2, ... or -1)")
        self.axis = axis
        super().__init__(**kwargs)

    def _sample_axis(self, rank):
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise self._error(ValueError, f"axis {self.axis} is out of range for inputs of "
                                          f"rank {rank + 1}")
        return axis

    def _check_merge_shapes(self, shapes):
        rank = len(shapes[0])
        axis = self._sample_axis(rank)
        rest = [s[:axis] + s[axis + 1:] for s in shapes]
        if any(len(s) != rank for s in shapes) or any(r != rest[0] for r in rest):
            raise self._error(ValueError, f"expects inputs whose shapes differ only on axis "
                                          f"{self.axis}. Received: "
                                          f"{[_format_shape((None,) + s) for s in shapes]}")

    def _merged_shape(self, shapes):
        axis = self._sample_axis(len(shapes[0]))
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def _merge(self, xs):
        xp = backend.get_array_module(xs[0])
        axis = self._sample_axis(xs[0].ndim - 1) + 1
        self._cache = (axis, [x.shape[axis] for x in xs])
        return xp.concatenate(xs, axis=axis)

    def _split(self, dy):
        axis, sizes = self._cache
        grads, start = [], 0
        for size in sizes:
            index = [slice(None)] * dy.ndim
            index[axis] = slice(start, start + size)
            grads.append(dy[tuple(index)])
            start += size
        return grads

    def get_config(self):
        return {"name": self.name, "axis": self.axis}
