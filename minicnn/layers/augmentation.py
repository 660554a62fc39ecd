"""RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomCrop,
RandomContrast and RandomBrightness: Keras 3's image augmentation layers, over
``minicnn.ops.augment``. Arguments, defaults, validation and the distributions of
the draws are Keras 3's; the draws themselves come from NumPy.

In training (``forward(x, training=True)``, which ``fit`` uses) each layer draws
new transform parameters for the batch and applies them; at inference it returns
its input unchanged, as Keras does (RandomCrop too: Keras 3 crops only in
training, so at inference its output keeps the input's size although its
``compute_output_shape`` is the crop's). ``backward`` is the transpose of the
transform applied in the last forward (the identity after an inference forward).

With ``seed`` a layer owns a generator and draws the same sequence every run;
without, it draws from minicnn's global generator (``minicnn.utils.global_rng``,
set by ``minicnn.utils.set_random_seed``).
"""
import numbers

import numpy as np

from ..ops.augment import (FILL_MODES, FLIP_MODES, INTERPOLATIONS, affine_backward,
                           affine_forward, brightness_backward, brightness_forward,
                           contrast_backward, contrast_forward, crop_backward, crop_forward,
                           flip_backward, flip_forward, rotation_transforms,
                           translation_transforms, zoom_transforms)
from ..shapes import normalize_data_format
from ..utils import global_rng
from .base import Layer


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range_pair(value, arg_name, owner, low, high, low_open=False):
    """Keras's ``height_factor`` / ``width_factor``: a number f (-> (-|f|, |f|)) or a
    pair (sorted), every number in [low, high] ((low, high] with ``low_open``)."""
    span = f"{'(' if low_open else '['}{low}, {high}]"
    message = (f"{owner}: `{arg_name}` must be a number, or a list of two numbers, in "
               f"the range {span}. Received: {arg_name}={value!r}")
    if _is_number(value):
        items = (value,)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and \
            all(_is_number(v) for v in value):
        items = tuple(value)
    else:
        raise ValueError(message)
    if any(v > high or v < low or (low_open and v == low) for v in items):
        raise ValueError(message)
    if len(items) == 1:
        return -abs(float(value)), abs(float(value))
    return tuple(sorted(float(v) for v in items))


def _factor(value, owner, bounds):
    """Keras's base ``factor`` rule (RandomRotation, RandomContrast, RandomBrightness):
    a number f in ``bounds`` -> ``(max(-|f|, bounds[0]), |f|)``; a pair -> sorted,
    refused only when its first entry is above ``bounds[1]`` or its second below
    ``bounds[0]``."""
    message = (f"{owner}: `factor` must be a number, or a list of two numbers, in the "
               f"range [{bounds[0]}, {bounds[1]}]. Received: factor={value!r}")
    if _is_number(value):
        if not bounds[0] <= value <= bounds[1]:
            raise ValueError(message)
        return max(-abs(value), bounds[0]), abs(value)
    if not isinstance(value, (list, tuple)) or len(value) != 2 or \
            not all(_is_number(v) for v in value) or value[0] > bounds[1] or value[1] < bounds[0]:
        raise ValueError(message)
    return tuple(sorted(value))


def _option(value, options, arg_name, owner):
    """A name from ``options`` (case-insensitive); NotImplementedError otherwise, as Keras."""
    if not isinstance(value, str) or value.lower() not in options:
        raise NotImplementedError(f"{owner}: unknown `{arg_name}`; expected one of "
                                  f"{list(options)}. Received: {arg_name}={value!r}")
    return value.lower()


class _RandomImageLayer(Layer):
    """Shared: the seed and its generator, the image checks, identity at inference.
    Subclasses draw the batch's parameters in ``_draw(x, rng)`` (arrays of one entry
    per image, or numbers for the whole batch), apply them in ``_apply(x, drawn)`` ->
    ``(y, cache)`` and undo in ``_transpose(dy, cache)``. Drawing apart from applying
    lets the two halves of a two-thread step (``minicnn.split_step``) apply their
    rows of one draw for the whole batch (``_step_draw``)."""

    def __init__(self, seed=None, data_format=None, input_shape=None, name=None, **kwargs):
        owner = type(self).__name__
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or seed < 0):
            raise ValueError(f"{owner}: `seed` must be None or a non-negative int. "
                             f"Received: seed={seed!r}")
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._step_draw = None  # a half's rows of the whole batch's draw (split_step)
        self.data_format = normalize_data_format(data_format, owner)
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_image(shape)

    def _hw(self, x):
        """(H, W) of a batch in this layer's layout."""
        return tuple(x.shape[2:4]) if self.data_format == "channels_first" else \
            tuple(x.shape[1:3])

    def _forward(self, x, training):
        if not training:
            self._cache = None
            return x
        drawn = self._step_draw if self._step_draw is not None else self.draw(x)
        y, cache = self._apply(x, drawn)
        self._cache = (cache,)
        return y

    def draw(self, x):
        """The parameters of the next training step for the batch ``x``, from the
        layer's generator (or the global one)."""
        return self._draw(x, self._rng if self._rng is not None else global_rng())

    @staticmethod
    def rows_of(drawn, rows, batch):
        """The part of a batch's draw that its ``rows`` (a slice) use: the per-image
        arrays cut, what holds for the whole batch kept."""
        return tuple(d[rows] if isinstance(d, np.ndarray) and d.shape[:1] == (batch,) else d
                     for d in drawn)

    def _backward(self, dy):
        return dy if self._cache is None else self._transpose(dy, self._cache[0])

    def get_config(self):
        return {"name": self.name, "seed": self.seed, "data_format": self.data_format}


class RandomFlip(_RandomImageLayer):
    """Flips each image with probability 1/2: left-right (``"horizontal"``),
    top-bottom (``"vertical"``) or, with ``"horizontal_and_vertical"`` (the default),
    both at once (one coin per image for both axes, as Keras draws it)."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        if not isinstance(mode, str) or mode not in FLIP_MODES:
            raise ValueError(f"RandomFlip: unknown `mode`; expected one of "
                             f"{list(FLIP_MODES)}. Received: mode={mode!r}")
        self.mode = mode
        super().__init__(seed=seed, data_format=data_format, **kwargs)

    def _draw(self, x, rng):
        return (rng.random(len(x)) <= 0.5,)

    def _apply(self, x, drawn):
        return flip_forward(x, drawn[0], self.mode, self.data_format)

    def _transpose(self, dy, cache):
        return flip_backward(dy, cache)

    def get_config(self):
        return dict(super().get_config(), mode=self.mode)


class _AffineLayer(_RandomImageLayer):
    """Shared by the resampling layers: fill mode, fill value, interpolation."""

    def __init__(self, fill_mode, interpolation, fill_value, **kwargs):
        owner = type(self).__name__
        self.fill_mode = _option(fill_mode, FILL_MODES, "fill_mode", owner)
        self.interpolation = _option(interpolation, INTERPOLATIONS, "interpolation", owner)
        if not _is_number(fill_value):
            raise ValueError(f"{owner}: `fill_value` must be a number. Received: "
                             f"fill_value={fill_value!r}")
        self.fill_value = float(fill_value)
        super().__init__(**kwargs)

    def _draw(self, x, rng):
        return (self._transforms(len(x), *self._hw(x), rng),)

    def _apply(self, x, drawn):
        return affine_forward(x, drawn[0], self.interpolation, self.fill_mode,
                              self.fill_value, self.data_format)

    def _transpose(self, dy, cache):
        return affine_backward(dy, cache)

    def get_config(self):
        return dict(super().get_config(), fill_mode=self.fill_mode,
                    interpolation=self.interpolation, fill_value=self.fill_value)


def _uniform(rng, low, high, n):
    """n float32 draws from [low, high) (a one-value range gives that value)."""
    return rng.uniform(low, high, n).astype(np.float32)


class RandomTranslation(_AffineLayer):
    """Shifts each image by a random fraction of its size: down by
    ``U(height_factor) * H`` pixels and right by ``U(width_factor) * W`` (negative:
    up, left). A factor is a number f (the range [-f, f]) or a pair (lower, upper),
    within [-1, 1]. Uncovered pixels follow ``fill_mode``."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height_range = _range_pair(height_factor, "height_factor", "RandomTranslation",
                                         -1.0, 1.0)
        self._width_range = _range_pair(width_factor, "width_factor", "RandomTranslation",
                                        -1.0, 1.0)
        super().__init__(fill_mode, interpolation, fill_value, seed=seed,
                         data_format=data_format, **kwargs)

    def _transforms(self, n, h, w, rng):
        down = _uniform(rng, *self._height_range, n) * np.float32(h)
        right = _uniform(rng, *self._width_range, n) * np.float32(w)
        return translation_transforms(right, down)

    def get_config(self):
        return dict(super().get_config(), height_factor=self.height_factor,
                    width_factor=self.width_factor)


class RandomRotation(_AffineLayer):
    """Rotates each image about its centre by ``U(factor) * 360`` degrees (positive:
    counter-clockwise). ``factor``: a number f (the range [-f, f]) or a pair
    (lower, upper), fractions of a full turn."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        self.factor = _factor(factor, "RandomRotation", (-1, 1))
        super().__init__(fill_mode, interpolation, fill_value, seed=seed,
                         data_format=data_format, **kwargs)

    def _transforms(self, n, h, w, rng):
        degrees = _uniform(rng, self.factor[0] * 360.0, self.factor[1] * 360.0, n)
        return rotation_transforms(degrees, h, w)

    def get_config(self):
        return dict(super().get_config(), factor=self.factor)


class RandomZoom(_AffineLayer):
    """Zooms each image about its centre: the output reads the input at a scale of
    ``1 + U(height_factor)`` vertically and ``1 + U(width_factor)`` horizontally
    (``width_factor=None``: the vertical draw for both, keeping the aspect). A
    positive factor zooms out (the image shrinks), a negative one zooms in; factors
    lie in (-1, 1]."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height_range = _range_pair(height_factor, "height_factor", "RandomZoom",
                                         -1.0, 1.0, low_open=True)
        self._width_range = None if width_factor is None else _range_pair(
            width_factor, "width_factor", "RandomZoom", -1.0, 1.0, low_open=True)
        super().__init__(fill_mode, interpolation, fill_value, seed=seed,
                         data_format=data_format, **kwargs)

    def _transforms(self, n, h, w, rng):
        low, high = self._height_range
        zoom_y = _uniform(rng, 1.0 + low, 1.0 + high, n)
        zoom_x = zoom_y
        if self._width_range is not None:
            zoom_x = _uniform(rng, 1.0 + self._width_range[0], 1.0 + self._width_range[1], n)
        return zoom_transforms(zoom_x, zoom_y, h, w)

    def get_config(self):
        return dict(super().get_config(), height_factor=self.height_factor,
                    width_factor=self.width_factor)


class RandomCrop(_RandomImageLayer):
    """In training, cuts a random ``height x width`` window out of the batch (one
    position for the whole batch, as Keras draws it). An input not larger than the
    target on both axes is cut and resized to ``height x width`` (bilinear) as
    Keras does it. At inference the input
    passes unchanged (Keras 3's behaviour)."""

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        for arg_name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"RandomCrop: `{arg_name}` must be a positive int. "
                                 f"Received: {arg_name}={value!r}")
        self.height, self.width = int(height), int(width)
        super().__init__(seed=seed, data_format=data_format, **kwargs)

    def _output_shape(self, shape):
        if self.data_format == "channels_first":
            return (shape[0], self.height, self.width)
        return (self.height, self.width, shape[2])

    def _draw(self, x, rng):
        h, w = self._hw(x)
        if h > self.height and w > self.width:
            return (int(rng.integers(0, h - self.height + 1)),
                    int(rng.integers(0, w - self.width + 1)))
        return ()

    def _apply(self, x, drawn):
        h, w = self._hw(x)
        if drawn:
            top, left = drawn
            return crop_forward(x, top, left, self.height, self.width,
                                data_format=self.data_format)
        # Keras centres a window of the target's aspect ratio, then slices
        # ``height x width`` from its corner (cut short by the image's edge) and
        # resizes that slice to ``height x width``
        crop_h = max(min(h, int(float(w * self.height) / self.width)), 1)
        crop_w = max(min(w, int(float(h * self.width) / self.height)), 1)
        top, left = int(float(h - crop_h) / 2), int(float(w - crop_w) / 2)
        return crop_forward(x, top, left, min(h, top + self.height) - top,
                            min(w, left + self.width) - left, self.height, self.width,
                            self.data_format)

    def _transpose(self, dy, cache):
        return crop_backward(dy, cache)

    def get_config(self):
        return dict(super().get_config(), height=self.height, width=self.width)


def _value_range(value, owner):
    if not isinstance(value, (list, tuple)) or len(value) != 2 or \
            not all(_is_number(v) for v in value):
        raise ValueError(f"{owner}: `value_range` must be a list of two numbers "
                         f"(the images' lowest and highest value). Received: "
                         f"value_range={value!r}")
    return value


class RandomContrast(_RandomImageLayer):
    """Scales each image's deviation from its per-channel mean by a random factor
    ``c ~ U(1 - lower, 1 + upper)``, ``(lower, upper) = factor`` by Keras's rule
    (a number f gives (0, f): c in [1, 1 + f]), then clips to ``value_range``:
    ``y = clip((x - mean) * c + mean, *value_range)``."""

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        self.factor = _factor(factor, "RandomContrast", (0, 1))
        self.value_range = tuple(_value_range(value_range, "RandomContrast"))
        super().__init__(seed=seed, data_format=data_format, **kwargs)

    def _draw(self, x, rng):
        return (_uniform(rng, 1.0 - self.factor[0], 1.0 + self.factor[1], len(x)),)

    def _apply(self, x, drawn):
        return contrast_forward(x, drawn[0], self.value_range, self.data_format)

    def _transpose(self, dy, cache):
        return contrast_backward(dy, cache)

    def get_config(self):
        return dict(super().get_config(), factor=self.factor, value_range=self.value_range)


class RandomBrightness(_RandomImageLayer):
    """Adds ``U(factor) * (high - low)`` to every pixel of an image (one draw per
    image) and clips to ``value_range = (low, high)``. ``factor``: a number f (the
    range [-f, f]) or a pair, within [-1, 1]."""

    def __init__(self, factor, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        self.factor = _factor(factor, "RandomBrightness", (-1, 1))
        self.value_range = sorted(_value_range(value_range, "RandomBrightness"))
        super().__init__(seed=seed, data_format=data_format, **kwargs)

    def _draw(self, x, rng):
        low, high = self.value_range
        return (_uniform(rng, *self.factor, len(x)) * np.float32(high - low),)

    def _apply(self, x, drawn):
        return brightness_forward(x, drawn[0], self.value_range)

    def _transpose(self, dy, cache):
        return brightness_backward(dy, cache)

    def get_config(self):
        return dict(super().get_config(), factor=self.factor, value_range=self.value_range)


__all__ = ["RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomCrop",
           "RandomContrast", "RandomBrightness"]
