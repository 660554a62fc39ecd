"""Error paths: bad input gets a clear error that names the layer (or function),
says what was expected and what came; nothing silently broadcasts.

Every test asserts the exception type and, with a regex, the parts of the
message a user needs: who complains, the expected value, the received value.
"""
import math
import re
import sys
import types

import numpy as np
import pytest

import minicnn as mc
from minicnn import backend, initializers, losses
from minicnn.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)

POOLS = [MaxPooling2D, AveragePooling2D, MinPooling2D]


def msg(*parts):
    """A regex that finds each literal ``part`` in order (anything in between)."""
    return ".*".join(re.escape(str(p)) for p in parts)


def who(layer):
    """How the layer protocol names a layer in its messages: ``Conv2D 'conv2d'``."""
    return f"{type(layer).__name__} '{layer.name}'"


def rand(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype("float32")


# =============================================================================
# wrong input rank: forward, build and compute_output_shape
# =============================================================================
# (factory, bad sample shape (no batch axis), expected-rank text, layout text)
RANK_CASES = [
    pytest.param(lambda: Conv2D(4, 3, name="c"), (28, 28), "rank 4",
                 "(batch, height, width, channels)", id="Conv2D-rank3"),
    pytest.param(lambda: Conv2D(4, 3, name="c"), (2, 28, 28, 1), "rank 4",
                 "(batch, height, width, channels)", id="Conv2D-rank5"),
    pytest.param(lambda: Conv2D(4, 3, data_format="channels_first", name="c"), (28, 28), "rank 4",
                 "(batch, channels, height, width)", id="Conv2D-channels_first-rank3"),
] + [
    pytest.param(lambda cls=cls: cls(name="p"), (28, 28), "rank 4",
                 "(batch, height, width, channels)", id=f"{cls.__name__}-rank3")
    for cls in POOLS
] + [
    pytest.param(lambda cls=cls: cls(name="p"), (2, 28, 28, 1), "rank 4",
                 "(batch, height, width, channels)", id=f"{cls.__name__}-rank5")
    for cls in POOLS
] + [
    pytest.param(lambda: Dense(3, name="d"), (), "rank at least 2", "(batch, ..., features)",
                 id="Dense-rank1"),
    pytest.param(lambda: Flatten(name="f"), (), "rank at least 2", "(batch, ...)",
                 id="Flatten-rank1"),
    pytest.param(lambda: BatchNormalization(name="bn"), (), "rank at least 2",
                 "(batch, ..., channels)", id="BatchNormalization-rank1"),
]


def _received(sample):
    return "(None" + "".join(f", {d}" for d in sample) + ("," if not sample else "") + ")"


@pytest.mark.parametrize("factory, sample, rank, layout", RANK_CASES)
def test_wrong_rank_in_forward(factory, sample, rank, layout):
    layer = factory()
    x = np.zeros((2,) + sample, dtype="float32")
    with pytest.raises(ValueError, match=msg(who(layer), f"expected input of {rank}", layout,
                                             f"received shape {_received(sample)}",
                                             f"(rank {len(sample) + 1})")):
        layer.forward(x)
    assert not layer.built


@pytest.mark.parametrize("factory, sample, rank, layout", RANK_CASES)
def test_wrong_rank_in_build(factory, sample, rank, layout):
    layer = factory()
    with pytest.raises(ValueError, match=msg(who(layer), f"expected input of {rank}", layout,
                                             f"received shape {_received(sample)}")):
        layer.build(sample)
    assert not layer.built


@pytest.mark.parametrize("factory, sample, rank, layout", RANK_CASES)
def test_wrong_rank_in_compute_output_shape(factory, sample, rank, layout):
    layer = factory()
    with pytest.raises(ValueError, match=msg(who(layer), f"expected input of {rank}", layout,
                                             f"received shape {_received(sample)}")):
        layer.compute_output_shape(sample)


def test_activation_rejects_a_scalar_input():
    layer = Activation("relu", name="act")
    with pytest.raises(ValueError, match=msg(who(layer), "expected a batch", "scalar")):
        layer.forward(np.float32(1.0))


def test_dense_forward_after_build_on_higher_rank_input_does_not_crash():
    # Dense works on the last axis ("Input (N, ..., in)"), so an input of a higher
    # rank with the built feature count is fine (Keras accepts it too); it must
    # not end in an IndexError from the built-shape check.
    layer = Dense(2, name="d")
    layer.build((5,))
    y = layer.forward(rand(4, 3, 5))
    assert y.shape == (4, 3, 2)


def test_dense_forward_after_build_on_higher_rank_input_with_wrong_features():
    layer = Dense(2, name="d")
    layer.build((5,))
    with pytest.raises(ValueError, match=msg(who(layer), "5", "received", "(None, 3, 6)")):
        layer.forward(rand(4, 3, 6))


def test_batchnorm_forward_after_build_on_a_different_rank():
    layer = BatchNormalization(name="bn")
    layer.build((3,))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 3)", "received",
                                             "(None, 8, 8, 3)")):
        layer.forward(rand(4, 8, 8, 3))


def test_batchnorm_forward_after_build_on_a_lower_rank():
    layer = BatchNormalization(name="bn")
    layer.build((8, 8, 3))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 8, 8, 3)", "received",
                                             "(None, 3)")):
        layer.forward(rand(4, 3))


def test_flatten_forward_after_build_on_a_different_rank():
    layer = Flatten(name="f")
    layer.build((4,))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 4)", "received",
                                             "(None, 4, 4)")):
        layer.forward(rand(2, 4, 4))


# =============================================================================
# wrong channel / feature count after build
# =============================================================================
def test_conv2d_built_for_3_channels_given_4():
    layer = Conv2D(8, 3, name="conv")
    layer.build((8, 8, 3))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 8, 8, 3)", "size 3",
                                             "received (None, 8, 8, 4)")):
        layer.forward(rand(2, 8, 8, 4))


def test_conv2d_channels_first_built_for_3_channels_given_4():
    layer = Conv2D(8, 3, data_format="channels_first", name="conv")
    layer.build((3, 8, 8))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 3, 8, 8)", "axis 1 of size 3",
                                             "received (None, 4, 8, 8)")):
        layer.forward(rand(2, 4, 8, 8))


def test_conv2d_channel_count_checked_after_first_forward():
    layer = Conv2D(2, 3, name="conv")
    layer.forward(rand(1, 6, 6, 3))
    with pytest.raises(ValueError, match=msg(who(layer), "size 3", "received (None, 6, 6, 1)")):
        layer.forward(rand(1, 6, 6, 1))


def test_conv2d_channels_first_given_channels_last_data():
    # A channels_first Conv2D built for (3, 28, 28) fed a channels_last batch.
    layer = Conv2D(4, 3, data_format="channels_first", name="conv")
    layer.build((3, 28, 28))
    with pytest.raises(ValueError, match=msg(who(layer), "axis 1 of size 3",
                                             "received (None, 28, 28, 3)")):
        layer.forward(rand(1, 28, 28, 3))


def test_conv2d_unknown_channel_axis():
    layer = Conv2D(4, 3, name="conv")
    with pytest.raises(ValueError, match=msg(who(layer), "channel axis", "must be known",
                                             "(None, 8, 8, None)")):
        layer.build((8, 8, None))


def test_dense_wrong_feature_count_after_build():
    layer = Dense(4, name="dense")
    layer.build((5,))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 5)", "size 5",
                                             "received (None, 6)")):
        layer.forward(rand(3, 6))


def test_dense_unknown_feature_count():
    layer = Dense(4, name="dense")
    with pytest.raises(ValueError, match=msg(who(layer), "last axis", "must be known",
                                             "(None, None)")):
        layer.build((None,))


def test_batchnorm_channel_mismatch_after_build():
    layer = BatchNormalization(name="bn")
    layer.build((8, 8, 3))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 8, 8, 3)", "size 3",
                                             "received (None, 8, 8, 5)")):
        layer.forward(rand(2, 8, 8, 5))


def test_batchnorm_axis1_channel_mismatch_after_build():
    layer = BatchNormalization(axis=1, name="bn")
    layer.build((3, 8, 8))
    with pytest.raises(ValueError, match=msg(who(layer), "(None, 3, 8, 8)", "axis 1 of size 3",
                                             "received (None, 4, 8, 8)")):
        layer.forward(rand(2, 4, 8, 8))


# =============================================================================
# non-positive or non-int sizes
# =============================================================================
@pytest.mark.parametrize("factory, exc, owner, arg, received", [
    pytest.param(lambda: Conv2D(0, 3), ValueError, "Conv2D", "filters", "filters=0",
                 id="filters=0"),
    pytest.param(lambda: Conv2D(-1, 3), ValueError, "Conv2D", "filters", "filters=-1",
                 id="filters=-1"),
    pytest.param(lambda: Conv2D(2.0, 3), TypeError, "Conv2D", "filters", "filters=2.0",
                 id="filters=2.0"),
    pytest.param(lambda: Conv2D(True, 3), TypeError, "Conv2D", "filters", "filters=True",
                 id="filters=True"),
    pytest.param(lambda: Conv2D(8, 0), ValueError, "Conv2D", "kernel_size", "kernel_size=0",
                 id="kernel_size=0"),
    pytest.param(lambda: Conv2D(8, (3, -1)), ValueError, "Conv2D", "kernel_size",
                 "kernel_size=(3, -1)", id="kernel_size=(3,-1)"),
    pytest.param(lambda: Conv2D(8, (3,)), ValueError, "Conv2D", "kernel_size",
                 "kernel_size=(3,)", id="kernel_size=(3,)"),
    pytest.param(lambda: Conv2D(8, (3, 3, 3)), ValueError, "Conv2D", "kernel_size",
                 "kernel_size=(3, 3, 3)", id="kernel_size=(3,3,3)"),
    pytest.param(lambda: Conv2D(8, 2.5), TypeError, "Conv2D", "kernel_size",
                 "kernel_size=2.5", id="kernel_size=2.5"),
    pytest.param(lambda: Conv2D(8, (3, 2.5)), TypeError, "Conv2D", "kernel_size",
                 "kernel_size=(3, 2.5)", id="kernel_size=(3,2.5)"),
    pytest.param(lambda: Conv2D(8, 3, strides=0), ValueError, "Conv2D", "strides",
                 "strides=0", id="conv-strides=0"),
    pytest.param(lambda: Conv2D(8, 3, strides=(1, 0)), ValueError, "Conv2D", "strides",
                 "strides=(1, 0)", id="conv-strides=(1,0)"),
    pytest.param(lambda: MaxPooling2D(pool_size=(2, 0)), ValueError, "MaxPooling2D",
                 "pool_size", "pool_size=(2, 0)", id="max-pool_size=(2,0)"),
    pytest.param(lambda: AveragePooling2D(pool_size=0), ValueError, "AveragePooling2D",
                 "pool_size", "pool_size=0", id="avg-pool_size=0"),
    pytest.param(lambda: MinPooling2D(pool_size=1.5), TypeError, "MinPooling2D",
                 "pool_size", "pool_size=1.5", id="min-pool_size=1.5"),
    pytest.param(lambda: MaxPooling2D(strides=0), ValueError, "MaxPooling2D", "strides",
                 "strides=0", id="pool-strides=0"),
    pytest.param(lambda: MaxPooling2D(strides=(2, 2, 2)), ValueError, "MaxPooling2D",
                 "strides", "strides=(2, 2, 2)", id="pool-strides=(2,2,2)"),
    pytest.param(lambda: Dense(0), ValueError, "Dense", "units", "units=0", id="units=0"),
    pytest.param(lambda: Dense(-3), ValueError, "Dense", "units", "units=-3", id="units=-3"),
    pytest.param(lambda: Dense(1.5), TypeError, "Dense", "units", "units=1.5",
                 id="units=1.5"),
])
def test_bad_size_argument(factory, exc, owner, arg, received):
    with pytest.raises(exc, match=msg(f"{owner}: ", arg, "Received: " + received)):
        factory()


def test_positive_sizes_accept_numpy_ints():
    layer = Conv2D(np.int64(4), (np.int32(3), 3), strides=np.int64(1))
    assert layer.compute_output_shape((5, 5, 1)) == (3, 3, 4)


@pytest.mark.parametrize("factory, owner", [
    (lambda s: Conv2D(4, 3, input_shape=s), "Conv2D"),
    (lambda s: MaxPooling2D(input_shape=s), "MaxPooling2D"),
    (lambda s: Dense(4, input_shape=s), "Dense"),
    (lambda s: Flatten(input_shape=s), "Flatten"),
    (lambda s: BatchNormalization(input_shape=s), "BatchNormalization"),
], ids=["Conv2D", "MaxPooling2D", "Dense", "Flatten", "BatchNormalization"])
@pytest.mark.parametrize("shape", [(28, 0, 1), (28, -28, 1), (28, 28.0, 1)],
                         ids=["zero", "negative", "float"])
def test_input_shape_with_bad_entry(factory, owner, shape):
    with pytest.raises(ValueError, match=msg(f"{owner}: input_shape", "positive ints",
                                             f"Received: input_shape={shape!r}")):
        factory(shape)


def test_input_shape_not_a_tuple():
    with pytest.raises(TypeError, match=msg("Conv2D: input_shape", "tuple",
                                            "Received: input_shape=5")):
        Conv2D(4, 3, input_shape=5)


@pytest.mark.parametrize("method", ["build", "compute_output_shape"])
@pytest.mark.parametrize("shape", [(8, 0, 3), (-8, 8, 3)])
def test_build_with_non_positive_sample_shape(method, shape):
    layer = Conv2D(4, 3, name="c")
    with pytest.raises(ValueError, match=msg("Conv2D", "input_shape", "positive",
                                             f"Received: input_shape={shape!r}")):
        getattr(layer, method)(shape)
    assert not layer.built


# =============================================================================
# names: padding, data_format, activation, initializer
# =============================================================================
def test_conv2d_unknown_padding():
    with pytest.raises(ValueError, match=msg("Conv2D", "unknown padding",
                                             "['valid', 'same', 'full']",
                                             "Received: padding='causal'")):
        Conv2D(4, 3, padding="causal")


@pytest.mark.parametrize("cls", POOLS)
def test_pooling_rejects_full_padding(cls):
    with pytest.raises(ValueError, match=msg(cls.__name__, "unknown padding",
                                             "['valid', 'same']",
                                             "Received: padding='full'")):
        cls(padding="full")


@pytest.mark.parametrize("padding", [None, 1, ""])
def test_conv2d_padding_not_a_name(padding):
    with pytest.raises(ValueError, match=msg("Conv2D", "padding",
                                             f"Received: padding={padding!r}")):
        Conv2D(4, 3, padding=padding)


@pytest.mark.parametrize("padding", ["SAME", "Same", "sAmE"])
def test_padding_names_are_case_insensitive(padding):
    conv = Conv2D(4, 3, padding=padding)
    assert conv.padding == "same"
    assert conv.compute_output_shape((5, 5, 1)) == (5, 5, 4)
    pool = MaxPooling2D(2, padding=padding)
    assert pool.compute_output_shape((5, 5, 1)) == (3, 3, 1)
    assert Conv2D(4, 3, padding="FULL").compute_output_shape((5, 5, 1)) == (7, 7, 4)
    assert AveragePooling2D(2, padding="VALID").compute_output_shape((5, 5, 1)) == (2, 2, 1)


def test_data_format_names_are_case_insensitive():
    conv = Conv2D(4, 3, data_format="Channels_First")
    assert conv.compute_output_shape((1, 5, 5)) == (4, 3, 3)
    assert MinPooling2D(data_format="CHANNELS_LAST").compute_output_shape((4, 4, 3)) == (2, 2, 3)


@pytest.mark.parametrize("factory, owner", [
    (lambda: Conv2D(4, 3, data_format="channels_middle"), "Conv2D"),
    (lambda: MaxPooling2D(data_format="channels_middle"), "MaxPooling2D"),
    (lambda: AveragePooling2D(data_format="channels_middle"), "AveragePooling2D"),
    (lambda: MinPooling2D(data_format="channels_middle"), "MinPooling2D"),
], ids=["Conv2D", "MaxPooling2D", "AveragePooling2D", "MinPooling2D"])
def test_unknown_data_format(factory, owner):
    with pytest.raises(ValueError, match=msg(owner, "unknown data_format",
                                             "['channels_last', 'channels_first']",
                                             "Received: data_format='channels_middle'")):
        factory()


@pytest.mark.parametrize("factory, owner, name", [
    (lambda: Conv2D(4, 3, activation="hard_silu"), "Conv2D", "hard_silu"),
    (lambda: Dense(4, activation="mish"), "Dense", "mish"),
    (lambda: Activation("selu"), "Activation", "selu"),
    (lambda: Activation(42), "Activation", 42),
], ids=["Conv2D", "Dense", "Activation", "Activation-int"])
def test_unknown_activation(factory, owner, name):
    with pytest.raises(ValueError, match=msg(f"{owner}: unknown activation",
                                             "'relu', 'tanh', 'sigmoid', 'softmax'",
                                             f"Received: activation={name!r}")):
        factory()


@pytest.mark.parametrize("factory, owner, arg", [
    (lambda: Conv2D(4, 3, kernel_initializer="xavier"), "Conv2D", "kernel_initializer"),
    (lambda: Conv2D(4, 3, bias_initializer="xavier"), "Conv2D", "bias_initializer"),
    (lambda: Dense(4, kernel_initializer="xavier"), "Dense", "kernel_initializer"),
    (lambda: Dense(4, bias_initializer="xavier"), "Dense", "bias_initializer"),
], ids=["Conv2D-kernel", "Conv2D-bias", "Dense-kernel", "Dense-bias"])
def test_unknown_initializer_in_layer(factory, owner, arg):
    with pytest.raises(ValueError, match=msg(f"{owner}: unknown {arg}", "glorot_uniform",
                                             f"Received: {arg}='xavier'")):
        factory()


def test_unknown_initializer_name():
    with pytest.raises(ValueError, match=msg("unknown initializer", "he_normal",
                                             "Received: initializer='xavier'")):
        initializers.get("xavier")


# =============================================================================
# set_weights
# =============================================================================
def test_set_weights_before_build():
    layer = Conv2D(4, 3, name="conv")
    with pytest.raises(ValueError, match=msg(who(layer), "set_weights", "built", "build(")):
        layer.set_weights([np.zeros((3, 3, 1, 4)), np.zeros(4)])


def test_conv2d_set_weights_kernel_shape():
    layer = Conv2D(8, 3, name="conv")
    layer.build((5, 5, 1))
    with pytest.raises(ValueError, match=msg(who(layer), "'kernel'", "(3, 3, 1, 8)",
                                             "received (3, 3, 8, 1)")):
        layer.set_weights([np.zeros((3, 3, 8, 1)), np.zeros(8)])


def test_conv2d_set_weights_missing_bias():
    layer = Conv2D(8, 3, name="conv")
    layer.build((5, 5, 1))
    with pytest.raises(ValueError, match=msg(who(layer), "expected 2 arrays",
                                             "['kernel', 'bias']", "received 1")):
        layer.set_weights([np.zeros((3, 3, 1, 8))])


def test_conv2d_set_weights_too_many():
    layer = Conv2D(8, 3, use_bias=False, name="conv")
    layer.build((5, 5, 1))
    with pytest.raises(ValueError, match=msg(who(layer), "expected 1 arrays", "['kernel']",
                                             "received 2")):
        layer.set_weights([np.zeros((3, 3, 1, 8)), np.zeros(8)])


def test_dense_set_weights_bias_shape_does_not_broadcast():
    layer = Dense(4, name="dense")
    layer.build((3,))
    with pytest.raises(ValueError, match=msg(who(layer), "'bias'", "(4,)", "received (1, 4)")):
        layer.set_weights([np.zeros((3, 4)), np.zeros((1, 4))])


def test_dense_set_weights_transposed_kernel():
    layer = Dense(4, name="dense")
    layer.build((3,))
    with pytest.raises(ValueError, match=msg(who(layer), "'kernel'", "(3, 4)",
                                             "received (4, 3)")):
        layer.set_weights([np.zeros((4, 3)), np.zeros(4)])


def test_batchnorm_set_weights_with_two_arrays():
    layer = BatchNormalization(name="bn")
    layer.build((5,))
    with pytest.raises(ValueError, match=msg(who(layer), "expected 4 arrays",
                                             "['gamma', 'beta', 'moving_mean', "
                                             "'moving_variance']", "received 2")):
        layer.set_weights([np.ones(5), np.zeros(5)])


def test_set_weights_complex_array():
    layer = Dense(2, name="dense")
    layer.build((3,))
    with pytest.raises(TypeError, match=msg(who(layer), "'kernel'", "real numeric",
                                            "complex128")):
        layer.set_weights([np.zeros((3, 2), dtype=complex), np.zeros(2)])


def test_failed_set_weights_leaves_weights_unchanged():
    layer = Dense(2, name="dense")
    layer.build((3,))
    before = layer.get_weights()
    with pytest.raises(ValueError):
        layer.set_weights([np.ones((3, 2)), np.ones(3)])
    for old, new in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_count_params_before_build():
    layer = Dense(2, name="dense")
    with pytest.raises(ValueError, match=msg(who(layer), "count_params", "built")):
        layer.count_params()


# =============================================================================
# a padding that makes the output empty
# =============================================================================
EMPTY_CASES = [
    pytest.param(lambda: Conv2D(2, 5, padding="valid", name="c"), "5x5 kernel",
                 id="Conv2D-k5-valid"),
    pytest.param(lambda: Conv2D(2, (1, 5), padding="valid", name="c"), "1x5 kernel",
                 id="Conv2D-k1x5-valid"),
] + [
    pytest.param(lambda cls=cls: cls(3, padding="valid", name="p"), "3x3 pool window",
                 id=f"{cls.__name__}-3-valid")
    for cls in POOLS
]


@pytest.mark.parametrize("factory, window", EMPTY_CASES)
def test_empty_output_in_build(factory, window):
    layer = factory()
    sample = (3, 3, 1) if isinstance(layer, Conv2D) else (2, 2, 1)
    hw = "x".join(map(str, sample[:2]))
    with pytest.raises(ValueError, match=msg(who(layer), window, "'valid'", f"input of {hw}",
                                             "empty")):
        layer.build(sample)
    assert not layer.built


@pytest.mark.parametrize("factory, window", EMPTY_CASES)
def test_empty_output_in_compute_output_shape(factory, window):
    layer = factory()
    sample = (3, 3, 1) if isinstance(layer, Conv2D) else (2, 2, 1)
    hw = "x".join(map(str, sample[:2]))
    with pytest.raises(ValueError, match=msg(who(layer), window, "'valid'", f"input of {hw}",
                                             "empty")):
        layer.compute_output_shape(sample)


@pytest.mark.parametrize("factory, window", EMPTY_CASES)
def test_empty_output_in_first_forward(factory, window):
    layer = factory()
    sample = (3, 3, 1) if isinstance(layer, Conv2D) else (2, 2, 1)
    hw = "x".join(map(str, sample[:2]))
    with pytest.raises(ValueError, match=msg(who(layer), window, "'valid'", f"input of {hw}",
                                             "empty")):
        layer.forward(rand(1, *sample))


@pytest.mark.parametrize("factory, window", EMPTY_CASES)
def test_empty_output_in_forward_after_build_on_a_larger_input(factory, window):
    # Built for 8x8, then run on a smaller image: the op must not be the one to
    # complain anonymously; the message should still name the layer.
    layer = factory()
    layer.build((8, 8, 1))
    sample = (3, 3, 1) if isinstance(layer, Conv2D) else (2, 2, 1)
    with pytest.raises(ValueError, match=msg(who(layer), "'valid'", "empty")):
        layer.forward(rand(1, *sample))


def test_empty_output_channels_first():
    layer = Conv2D(2, 5, data_format="channels_first", name="c")
    with pytest.raises(ValueError, match=msg(who(layer), "5x5 kernel", "input of 3x3",
                                             "(None, 1, 3, 3)", "empty")):
        layer.compute_output_shape((1, 3, 3))


def test_same_and_full_padding_never_empty():
    assert Conv2D(2, 5, padding="same").compute_output_shape((3, 3, 1)) == (3, 3, 2)
    assert Conv2D(2, 5, padding="full").compute_output_shape((3, 3, 1)) == (7, 7, 2)
    assert MaxPooling2D(3, padding="same").compute_output_shape((2, 2, 1)) == (1, 1, 1)


# =============================================================================
# NaN / Inf checking
# =============================================================================
def _with(value, shape=(2, 5, 5, 1), count=1):
    x = np.zeros(shape, dtype="float32")
    x.flat[:count] = value
    return x


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("factory", [
    lambda: Conv2D(2, 3, check_numerics=True, name="c"),
    lambda: MaxPooling2D(check_numerics=True, name="c"),
    lambda: BatchNormalization(check_numerics=True, name="c"),
    lambda: Activation("relu", check_numerics=True, name="c"),
], ids=["Conv2D", "MaxPooling2D", "BatchNormalization", "Activation"])
def test_check_numerics_on_the_layer(factory, value):
    layer = factory()
    with pytest.raises(ValueError, match=msg(who(layer), "input", "NaN or Inf",
                                             "3 of 50 values")):
        layer.forward(_with(value, count=3))


def test_check_numerics_dense():
    layer = Dense(2, check_numerics=True, name="d")
    x = rand(4, 3)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=msg(who(layer), "NaN or Inf", "1 of 12")):
        layer.forward(x)


def test_global_check_numerics():
    backend.set_check_numerics(True)
    layer = Conv2D(2, 3, name="c")
    with pytest.raises(ValueError, match=msg(who(layer), "NaN or Inf", "1 of 50")):
        layer.forward(_with(np.nan))


def test_global_check_numerics_on_dy():
    layer = Dense(2, name="d")
    layer.forward(rand(4, 3), training=True)
    backend.set_check_numerics(True)
    dy = np.ones((4, 2), dtype="float32")
    dy[0, 0] = np.inf
    with pytest.raises(ValueError, match=msg(who(layer), "dy", "NaN or Inf", "1 of 8")):
        layer.backward(dy)


def test_layer_flag_false_overrides_global_check():
    backend.set_check_numerics(True)
    layer = Activation("linear", check_numerics=False)
    y = layer.forward(_with(np.nan))
    assert np.isnan(y).sum() == 1


def test_nan_passes_silently_without_checking():
    # Documented: checking is off by default; NaN flows through unchanged.
    layer = Conv2D(1, 1, kernel_initializer="ones", name="c")
    y = layer.forward(_with(np.nan))
    assert np.isnan(y).sum() == 1
    assert np.isnan(MaxPooling2D().forward(_with(np.nan))).any()


# =============================================================================
# dtype of the input
# =============================================================================
@pytest.mark.parametrize("x, dtype", [
    (np.zeros((2, 5, 5, 1), dtype=complex), "complex128"),
    (np.full((2, 5, 5, 1), "a"), "<U1"),
    (np.zeros((2, 5, 5, 1), dtype=object), "object"),
    (np.zeros((2, 5, 5, 1), dtype="datetime64[s]"), "datetime64[s]"),
], ids=["complex", "str", "object", "datetime"])
@pytest.mark.parametrize("factory", [
    lambda: Conv2D(2, 3, name="c"),
    lambda: AveragePooling2D(name="c"),
    lambda: Flatten(name="c"),
    lambda: Dropout(0.5, name="c"),
], ids=["Conv2D", "AveragePooling2D", "Flatten", "Dropout"])
def test_wrong_dtype_input(factory, x, dtype):
    layer = factory()
    with pytest.raises(TypeError, match=msg(who(layer), "input", "real numeric",
                                            f"received dtype {dtype}")):
        layer.forward(x)
    assert not layer.built


def test_nested_list_of_strings():
    layer = Dense(2, name="d")
    with pytest.raises(TypeError, match=msg(who(layer), "real numeric", "received dtype <U")):
        layer.forward([["a", "b"], ["c", "d"]])


def test_ragged_nested_list():
    # A ragged list cannot become an array; the error should still name the layer.
    layer = Dense(2, name="d")
    with pytest.raises((ValueError, TypeError), match=msg(who(layer))):
        layer.forward([[1.0, 2.0], [3.0]])


def test_int_and_bool_inputs_are_accepted():
    assert Dense(2).forward(np.ones((3, 4), dtype=int)).dtype == np.float32
    assert Dense(2).forward(np.ones((3, 4), dtype=bool)).dtype == np.float32


def test_complex_dy():
    layer = Dense(2, name="d")
    layer.forward(rand(4, 3), training=True)
    with pytest.raises(TypeError, match=msg(who(layer), "dy", "real numeric", "complex128")):
        layer.backward(np.ones((4, 2), dtype=complex))


# =============================================================================
# backward / get_gradients protocol
# =============================================================================
@pytest.mark.parametrize("factory", [
    lambda: Conv2D(2, 3, name="l"), lambda: MaxPooling2D(name="l"),
    lambda: Dense(2, name="l"), lambda: Flatten(name="l"),
    lambda: BatchNormalization(name="l"), lambda: Dropout(0.5, name="l"),
    lambda: Activation("relu", name="l"),
], ids=["Conv2D", "MaxPooling2D", "Dense", "Flatten", "BatchNormalization", "Dropout",
        "Activation"])
def test_backward_before_forward(factory):
    layer = factory()
    with pytest.raises(RuntimeError, match=msg(who(layer), "backward() called before forward()")):
        layer.backward(np.ones((4, 2), dtype="float32"))


def test_backward_before_forward_on_a_built_layer():
    layer = Dense(2, name="d")
    layer.build((3,))
    with pytest.raises(RuntimeError, match=msg(who(layer), "before forward")):
        layer.backward(np.ones((4, 2), dtype="float32"))


# (factory, x shape, bad dy shape, expected output shape)
DY_CASES = [
    pytest.param(lambda: Conv2D(2, 3, name="l"), (4, 6, 6, 1), (1, 4, 4, 2), (4, 4, 4, 2),
                 id="Conv2D-batch1"),
    pytest.param(lambda: Conv2D(2, 3, name="l"), (4, 6, 6, 1), (4, 4, 4, 1), (4, 4, 4, 2),
                 id="Conv2D-channels1"),
    pytest.param(lambda: Conv2D(2, 3, name="l"), (4, 6, 6, 1), (4, 4, 4), (4, 4, 4, 2),
                 id="Conv2D-rank3"),
    pytest.param(lambda: MaxPooling2D(name="l"), (4, 6, 6, 3), (1, 3, 3, 3), (4, 3, 3, 3),
                 id="MaxPooling2D-batch1"),
    pytest.param(lambda: AveragePooling2D(name="l"), (4, 6, 6, 3), (4, 3, 3, 1),
                 (4, 3, 3, 3), id="AveragePooling2D-channels1"),
    pytest.param(lambda: MinPooling2D(name="l"), (4, 6, 6, 3), (4, 6, 6, 3), (4, 3, 3, 3),
                 id="MinPooling2D-input-shape"),
    pytest.param(lambda: Dense(2, name="l"), (4, 3), (1, 2), (4, 2), id="Dense-batch1"),
    pytest.param(lambda: Dense(2, name="l"), (4, 3), (2,), (4, 2), id="Dense-no-batch"),
    pytest.param(lambda: Dense(2, name="l"), (4, 3), (2, 4), (4, 2), id="Dense-transposed"),
    pytest.param(lambda: Flatten(name="l"), (4, 2, 2, 3), (1, 12), (4, 12),
                 id="Flatten-batch1"),
    pytest.param(lambda: BatchNormalization(name="l"), (4, 5), (1, 5), (4, 5),
                 id="BatchNormalization-batch1"),
    pytest.param(lambda: BatchNormalization(name="l"), (4, 5), (4, 1), (4, 5),
                 id="BatchNormalization-channels1"),
    pytest.param(lambda: Dropout(0.5, name="l"), (4, 5), (1, 5), (4, 5), id="Dropout-batch1"),
    pytest.param(lambda: Activation("softmax", name="l"), (4, 5), (1, 5), (4, 5),
                 id="Activation-batch1"),
    pytest.param(lambda: Activation("tanh", name="l"), (4, 5), (4, 5, 1), (4, 5),
                 id="Activation-extra-axis"),
]


@pytest.mark.parametrize("factory, x_shape, dy_shape, y_shape", DY_CASES)
def test_backward_dy_of_wrong_shape(factory, x_shape, dy_shape, y_shape):
    layer = factory()
    layer.forward(rand(*x_shape), training=True)
    with pytest.raises(ValueError, match=msg(who(layer), f"dy of shape {y_shape}",
                                             f"received {dy_shape}")):
        layer.backward(np.ones(dy_shape, dtype="float32"))


def test_backward_dy_scalar():
    layer = Dense(2, name="d")
    layer.forward(rand(4, 3), training=True)
    with pytest.raises(ValueError, match=msg(who(layer), "dy of shape (4, 2)",
                                             "received ()")):
        layer.backward(1.0)


@pytest.mark.parametrize("factory, x_shape", [
    (lambda: Conv2D(2, 3, name="l"), (2, 5, 5, 1)),
    (lambda: Dense(2, name="l"), (2, 3)),
    (lambda: BatchNormalization(name="l"), (2, 3)),
], ids=["Conv2D", "Dense", "BatchNormalization"])
def test_get_gradients_before_backward(factory, x_shape):
    layer = factory()
    layer.forward(rand(*x_shape), training=True)
    with pytest.raises(RuntimeError, match=msg(who(layer), "get_gradients()", "backward()")):
        layer.get_gradients()


def test_get_gradients_after_a_new_forward_is_stale():
    layer = Dense(2, name="d")
    layer.forward(rand(2, 3), training=True)
    layer.backward(np.ones((2, 2), dtype="float32"))
    assert len(layer.get_gradients()) == 2
    layer.forward(rand(2, 3), training=True)
    with pytest.raises(RuntimeError, match=msg(who(layer), "get_gradients()", "backward()")):
        layer.get_gradients()


def test_get_gradients_on_a_layer_never_run():
    # Dense has trainable weights; before any forward/backward there are no
    # gradients to return, which should be an error, not an empty list.
    layer = Dense(2, name="d")
    with pytest.raises(RuntimeError, match=msg(who(layer), "get_gradients()", "backward()")):
        layer.get_gradients()


def test_get_gradients_of_weightless_layer_is_empty():
    assert Flatten().get_gradients() == []


# =============================================================================
# Dropout and BatchNormalization arguments
# =============================================================================
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.5", True,
                                  None])
def test_dropout_rate_out_of_range(rate):
    with pytest.raises(ValueError, match=msg("Dropout: rate", "[0, 1)",
                                             f"Received: rate={rate!r}")):
        Dropout(rate)


@pytest.mark.parametrize("seed", [-1, 1.5, "42", True])
def test_dropout_bad_seed(seed):
    with pytest.raises(ValueError, match=msg("Dropout: seed", "non-negative int",
                                             f"Received: seed={seed!r}")):
        Dropout(0.5, seed=seed)


@pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan"), "0.9", True])
def test_batchnorm_bad_momentum(momentum):
    with pytest.raises(ValueError, match=msg("BatchNormalization: momentum", "[0, 1]",
                                             f"Received: momentum={momentum!r}")):
        BatchNormalization(momentum=momentum)


@pytest.mark.parametrize("epsilon", [0, -1e-3, "1e-3", None, float("nan"), float("inf")],
                         ids=["0", "negative", "str", "None", "nan", "inf"])
def test_batchnorm_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match=msg("BatchNormalization: epsilon",
                                             f"Received: epsilon={epsilon!r}")):
        BatchNormalization(epsilon=epsilon)


@pytest.mark.parametrize("axis", [1.5, "channels", True, None])
def test_batchnorm_axis_not_an_int(axis):
    with pytest.raises(TypeError, match=msg("BatchNormalization: axis", "int",
                                            f"Received: axis={axis!r}")):
        BatchNormalization(axis=axis)


@pytest.mark.parametrize("method", ["build", "compute_output_shape", "forward"])
@pytest.mark.parametrize("axis, sample", [(0, (4,)), (0, (8, 8, 3)), (2, (4,)), (4, (8, 8, 3)),
                                          (-3, (4,)), (-5, (8, 8, 3))])
def test_batchnorm_axis_is_batch_axis_or_out_of_range(method, axis, sample):
    layer = BatchNormalization(axis=axis, name="bn")
    arg = rand(2, *sample) if method == "forward" else sample
    with pytest.raises(ValueError, match=msg(who(layer), f"axis={axis}", "not a channel axis",
                                             _received(sample))):
        getattr(layer, method)(arg)
    assert not layer.built


def test_batchnorm_training_on_an_empty_batch():
    # Batch statistics of zero samples are undefined; the moving statistics must
    # not silently become NaN.
    layer = BatchNormalization(name="bn")
    layer.build((4,))
    try:
        layer.forward(np.zeros((0, 4), dtype="float32"), training=True)
    except ValueError as exc:
        assert re.search(msg(who(layer), "empty"), str(exc)) or \
            re.search(msg(who(layer), "batch"), str(exc)), str(exc)
    for w in layer.get_weights():
        assert np.isfinite(w).all(), f"weights became non-finite: {layer.get_weights()}"


# =============================================================================
# backend: float type and backend names
# =============================================================================
@pytest.mark.parametrize("value", ["float8", "int32", "float", "bfloat", np.int32, "complex64"])
def test_set_floatx_unknown(value):
    with pytest.raises(ValueError, match=msg("set_floatx", "'float16', 'float32', 'float64'",
                                             f"Received: {value!r}")):
        mc.backend.set_floatx(value)
    assert mc.backend.floatx() == "float32"


def test_set_floatx_none():
    # numpy.dtype(None) is float64: set_floatx(None) must not silently switch to it.
    with pytest.raises(ValueError, match=msg("set_floatx", "'float32'", "Received: None")):
        mc.backend.set_floatx(None)
    assert mc.backend.floatx() == "float32"


def test_set_floatx_not_a_type():
    with pytest.raises((ValueError, TypeError), match=msg("set_floatx", "'float32'",
                                                          "Received:")):
        mc.backend.set_floatx(object())
    assert mc.backend.floatx() == "float32"


def test_set_floatx_accepts_case_and_numpy_types():
    mc.set_floatx("FLOAT64")
    assert mc.backend.floatx() == "float64"
    mc.set_floatx(np.float32)
    assert mc.backend.floatx() == "float32"


@pytest.mark.parametrize("name", ["tensorflow", "", "jax", None])
def test_set_backend_unknown(name):
    with pytest.raises(ValueError, match=msg("set_backend", "unknown backend", "'numpy'",
                                             f"Received: {name!r}")):
        backend.set_backend(name)
    assert backend.get_backend() == backend.default_backend()


def test_set_backend_cupy_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(RuntimeError, match=msg("set_backend('cupy')", "CuPy is not installed",
                                               "pip install 'minicnn[cuda1")):
        backend.set_backend("cupy")
    assert backend.get_backend() == backend.default_backend()
    assert "cupy" not in backend.available()


def _fake_cupy(get_device_count):
    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=runtime)
    return module


def test_set_backend_cupy_without_cuda_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(RuntimeError, match=msg("set_backend('cupy')", "no CUDA device")):
        backend.set_backend("cupy")
    assert backend.get_backend() == backend.default_backend()


def test_set_backend_cupy_with_broken_cuda(monkeypatch):
    def boom():
        raise OSError("cudaErrorInsufficientDriver")
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(boom))
    with pytest.raises(RuntimeError, match=msg("set_backend('cupy')", "no CUDA device",
                                               "cudaErrorInsufficientDriver")):
        backend.set_backend("CuPy")
    assert backend.get_backend() == backend.default_backend()


@pytest.mark.skipif(__import__("importlib").util.find_spec("cupy") is not None,
                    reason="CuPy is installed here")
def test_set_backend_cupy_real_missing():
    with pytest.raises(RuntimeError, match=msg("set_backend('cupy')", "CuPy")):
        backend.set_backend("cupy")
    assert backend.get_backend() == backend.default_backend()


# =============================================================================
# losses
# =============================================================================
P3 = np.full((4, 3), 1 / 3)
Y3 = np.eye(3)[[0, 1, 2, 0]]


@pytest.mark.parametrize("loss, y_true, y_pred", [
    pytest.param(losses.CategoricalCrossentropy(), Y3[:1], P3, id="cce-batch1"),
    pytest.param(losses.CategoricalCrossentropy(), Y3[:, :2], P3, id="cce-classes"),
    pytest.param(losses.CategoricalCrossentropy(from_logits=True), Y3.T, P3.T[:, :3],
                 id="cce-logits-transposed"),
    pytest.param(losses.MeanSquaredError(), np.zeros(4), np.zeros((4, 1)), id="mse-(4,)-(4,1)"),
    pytest.param(losses.MeanSquaredError(), np.zeros((4, 1)), np.zeros(4), id="mse-(4,1)-(4,)"),
    pytest.param(losses.MeanSquaredError(), np.zeros((1, 3)), np.zeros((4, 3)),
                 id="mse-batch1"),
])
@pytest.mark.parametrize("method", ["call", "gradient"])
def test_loss_shape_mismatch_no_broadcasting(loss, y_true, y_pred, method):
    fn = loss if method == "call" else loss.gradient
    with pytest.raises(ValueError, match=msg(type(loss).__name__, "same shape",
                                             "no broadcasting",
                                             f"y_true.shape={y_true.shape}",
                                             f"y_pred.shape={y_pred.shape}")):
        fn(y_true, y_pred)


@pytest.mark.parametrize("y_true", [np.zeros(3, int), np.zeros((4, 2), int),
                                    np.zeros((4, 3), int), np.zeros((1,), int)],
                         ids=["short", "(4,2)", "one-hot", "batch1"])
def test_sparse_label_shape(y_true):
    loss = losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match=msg("SparseCategoricalCrossentropy", "(4,) or (4, 1)",
                                             f"y_true.shape={y_true.shape}",
                                             "y_pred.shape=(4, 3)")):
        loss(y_true, P3)


@pytest.mark.parametrize("labels, lo, hi", [([0, 1, 3, 0], 0, 3), ([0, -1, 2, 0], -1, 2),
                                            ([[5], [0], [1], [2]], 0, 5)],
                         ids=["3-of-3", "-1", "(N,1)-5"])
@pytest.mark.parametrize("method", ["call", "gradient"])
def test_sparse_labels_out_of_range(labels, lo, hi, method):
    loss = losses.SparseCategoricalCrossentropy()
    fn = loss if method == "call" else loss.gradient
    with pytest.raises(ValueError, match=msg("SparseCategoricalCrossentropy", "[0, 3)",
                                             f"[{lo}, {hi}]")):
        fn(np.array(labels), P3)


@pytest.mark.parametrize("labels, expected", [
    (np.array([0, 1.5, 2, 0]), ("integers", "dtype=float64", "1.5")),
    (np.array([0, np.nan, 2, 0]), ("integers", "dtype=float64", "nan")),
    (np.array(["0", "1", "2", "0"]), ("y_true must be a real numeric array", "dtype <U1")),
], ids=["1.5", "nan", "str"])
def test_sparse_labels_not_integers(labels, expected):
    loss = losses.SparseCategoricalCrossentropy()
    with pytest.raises(TypeError, match=msg("SparseCategoricalCrossentropy", *expected)):
        loss(labels, P3)


def test_sparse_labels_integral_floats_accepted():
    loss = losses.SparseCategoricalCrossentropy()
    assert loss(np.array([0.0, 1.0, 2.0, 0.0]), P3) == pytest.approx(math.log(3), rel=1e-6)


def test_loss_complex_prediction():
    # Casting complex predictions to float drops the imaginary part silently.
    loss = losses.MeanSquaredError()
    with pytest.raises(TypeError, match=msg("MeanSquaredError", "y_pred", "complex128")):
        loss(np.zeros((2, 3)), np.zeros((2, 3)) + 1j)


@pytest.mark.parametrize("name", ["hinge", "", "categorical", None, 3])
def test_unknown_loss_name(name):
    with pytest.raises(ValueError, match=msg("unknown loss", "categorical_crossentropy",
                                             "mse", f"Received: loss={name!r}")):
        losses.get(name)


def test_loss_names_are_case_insensitive():
    assert isinstance(losses.get("MSE"), losses.MeanSquaredError)


# =============================================================================
# unexpected keyword arguments and names
# =============================================================================
@pytest.mark.parametrize("factory, owner, kwarg", [
    (lambda: Conv2D(4, 3, kernal_size=3), "Conv2D", "kernal_size"),
    (lambda: Conv2D(4, 3, dilation_rate=2), "Conv2D", "dilation_rate"),
    (lambda: MaxPooling2D(pool=2), "MaxPooling2D", "pool"),
    (lambda: AveragePooling2D(stride=2), "AveragePooling2D", "stride"),
    (lambda: MinPooling2D(size=2), "MinPooling2D", "size"),
    (lambda: Dense(4, unit=3), "Dense", "unit"),
    (lambda: Flatten(channels=1), "Flatten", "channels"),
    (lambda: Activation("relu", activaton="tanh"), "Activation", "activaton"),
    (lambda: Dropout(0.5, noise_shape=(1, 2)), "Dropout", "noise_shape"),
    (lambda: BatchNormalization(eps=1e-3), "BatchNormalization", "eps"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_unexpected_keyword_argument(factory, owner, kwarg):
    with pytest.raises(TypeError, match=msg(f"{owner}: unexpected keyword argument",
                                            repr(kwarg))):
        factory()


@pytest.mark.parametrize("name", ["", 3])
def test_bad_layer_name(name):
    with pytest.raises(ValueError, match=msg("Dense: name", "non-empty string",
                                             f"Received: name={name!r}")):
        Dense(2, name=name)


def test_default_name_appears_in_messages():
    layer = Conv2D(4, 3)
    assert layer.name == "conv2d"
    with pytest.raises(ValueError, match=r"^Conv2D 'conv2d': "):
        layer.build((8, 8))
