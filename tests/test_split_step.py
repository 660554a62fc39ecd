"""Training steps run as two halves on two threads (minicnn.split_step): the same
weights as one pass over the whole batch (float64: to rounding; float32: within
float32 rounding), the same bits whatever the number of threads, taken only where it
is the same computation, and NaN steps still change nothing."""
import threading

import numpy as np
import pytest

import minicnn as mc
from minicnn import split_step
from minicnn.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout,
                            Flatten, MaxPooling2D)
from minicnn.models import Sequential

pytestmark = pytest.mark.skipif("numba" not in mc.backend.available(),
                                reason="numba does not import here")


@pytest.fixture
def numba_backend():
    mc.backend.set_backend("numba")
    yield
    mc.backend.set_backend("numpy")
    mc.backend.set_floatx("float32")


def small_lenet(extra=()):
    return Sequential([
        Conv2D(4, 5, padding="same", activation="tanh", input_shape=(12, 12, 1)),
        AveragePooling2D(2),
        Conv2D(6, 3, activation="relu"),
        MaxPooling2D(2),
        *extra,
        Flatten(),
        Dense(10, activation="softmax"),
    ])


def small_graph():
    """Residual adds, a concatenation, a shared conv, global pooling: a graph."""
    inputs = mc.Input((12, 12, 1))
    a = Conv2D(4, 3, padding="same", activation="relu")(inputs)
    shared = Conv2D(4, 3, padding="same", activation="tanh")
    b = mc.layers.Add()([shared(a), a])
    c = mc.layers.Concatenate()([shared(b), MaxPooling2D(1)(a)])
    pooled = mc.layers.GlobalAveragePooling2D()(c)
    return mc.Model(inputs, Dense(10, activation="softmax")(pooled))


def train(floatx, steps=3, split=True, batch=96, optimizer="adam", loss=None, seed=0,
          build=small_lenet):
    """Weights after ``steps`` train_on_batch calls and the losses returned."""
    mc.backend.set_floatx(floatx)
    mc.utils.set_random_seed(seed)
    model = build()
    model.compile(optimizer=optimizer, loss=loss or "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 12, 12, 1)).astype(floatx)
    y = rng.integers(0, 10, batch)
    if loss == "mse":
        y = np.eye(10, dtype=floatx)[y]
    saved = split_step.SPLIT_MIN_BATCH
    split_step.SPLIT_MIN_BATCH = 1 if split else 10**9
    try:
        assert split_step.suits(model, x) is split or not model.built
        losses = [model.train_on_batch(x, y) for _ in range(steps)]
        assert split_step.suits(model, x) is split
    finally:
        split_step.SPLIT_MIN_BATCH = saved
    return model.get_weights(), losses


@pytest.mark.parametrize("optimizer, loss", [("adam", None), ("sgd", None), ("adam", "mse")])
def test_halves_give_the_weights_of_one_pass_in_float64(numba_backend, optimizer, loss):
    split, split_losses = train("float64", optimizer=optimizer, loss=loss)
    whole, whole_losses = train("float64", split=False, optimizer=optimizer, loss=loss)
    np.testing.assert_allclose(split_losses, whole_losses, rtol=1e-13)
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_a_graph_with_merges_and_a_shared_layer_takes_the_halves(numba_backend):
    split, split_losses = train("float64", build=small_graph)
    whole, whole_losses = train("float64", split=False, build=small_graph)
    np.testing.assert_allclose(split_losses, whole_losses, rtol=1e-13)
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_halves_give_the_weights_of_one_pass_in_float32(numba_backend):
    split, _ = train("float32", optimizer="sgd")
    whole, _ = train("float32", split=False, optimizer="sgd")
    for a, b in zip(split, whole):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_an_odd_batch_is_cut_in_two_unequal_halves(numba_backend):
    split, _ = train("float64", batch=77)
    whole, _ = train("float64", batch=77, split=False)
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_bits_do_not_depend_on_the_thread_count(numba_backend):
    import numba
    from threadpoolctl import threadpool_limits
    reference, _ = train("float32")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        with threadpool_limits(limits=1):
            alone, _ = train("float32")
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(a, b) for a, b in zip(alone, reference))


def test_a_typical_step_takes_the_halves(numba_backend):
    model = small_lenet()
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.zeros((128, 12, 12, 1), np.float32)
    model.build((12, 12, 1))
    assert split_step.suits(model, x)
    assert not split_step.suits(model, x[:split_step.SPLIT_MIN_BATCH - 1])


def normalized_lenet():
    """BatchNormalization (one after a conv, one on features) and two Dropouts."""
    return Sequential([
        Conv2D(4, 5, padding="same", input_shape=(12, 12, 1)),
        BatchNormalization(),
        mc.layers.Activation("relu"),
        AveragePooling2D(2),
        Dropout(0.3, seed=5),
        Conv2D(6, 3, activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dropout(0.5),
        Dense(12),
        BatchNormalization(momentum=0.9),
        Dense(10, activation="softmax"),
    ])


def moving_statistics(model):
    return [w for layer in model.layers if isinstance(layer, BatchNormalization)
            for w in layer.weights[2:]]


@pytest.mark.parametrize("batch", [96, 77])
def test_batch_normalization_and_dropout_take_the_halves_in_float64(numba_backend, batch):
    """The halves add their statistics (as synchronized=True adds the ranks') and
    compute their rows of the one dropout mask: the whole batch's step, to rounding."""
    split, split_losses = train("float64", build=normalized_lenet, batch=batch)
    whole, whole_losses = train("float64", split=False, build=normalized_lenet, batch=batch)
    np.testing.assert_allclose(split_losses, whole_losses, rtol=1e-12)
    for a, b in zip(split, whole):  # the moving statistics are among the weights; the
        # bias of a conv before a BatchNormalization has a zero gradient (to rounding)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_batch_normalization_and_dropout_halves_in_float32(numba_backend):
    split, _ = train("float32", build=normalized_lenet, optimizer="sgd")
    whole, _ = train("float32", split=False, build=normalized_lenet, optimizer="sgd")
    for a, b in zip(split, whole):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_moving_statistics_change_once_per_step(numba_backend):
    mc.utils.set_random_seed(0)
    model = normalized_lenet()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((128, 12, 12, 1)).astype(np.float32)
    model.build((12, 12, 1))
    assert split_step.suits(model, x)
    mean = model.layers[0](x).mean(axis=(0, 1, 2))  # before the step changes the conv
    model.train_on_batch(x, np.zeros(128, int))
    bn = model.layers[1]
    # one update from (0, 1): 0.99 * 0 + 0.01 * batch mean, not applied twice
    np.testing.assert_allclose(bn.weights[2], 0.01 * mean, rtol=1e-4, atol=1e-7)


def test_a_half_failing_before_an_exchange_does_not_hang(numba_backend, monkeypatch):
    """The other half waits for the failed one's statistics: it is released and the
    first error, not the release, reaches the caller."""
    model = normalized_lenet()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build((12, 12, 1))
    conv = model.layers[0]
    original = type(conv)._forward

    def failing(self, x, training):
        if self is not conv and len(x) == 64 and x[0, 0, 0, 0] == 1:
            raise RuntimeError("second half failed")
        return original(self, x, training)
    monkeypatch.setattr(type(conv), "_forward", failing)
    x = np.zeros((128, 12, 12, 1), np.float32)
    x[64] = 1
    errors = []

    def step():
        try:
            model.train_on_batch(x, np.zeros(128, int))
        except RuntimeError as exc:
            errors.append(exc)
    runner = threading.Thread(target=step, daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the first half still waits for the failed half"
    assert len(errors) == 1 and "second half failed" in str(errors[0])
    monkeypatch.setattr(type(conv), "_forward", original)
    model.train_on_batch(x, np.zeros(128, int))  # the exchange of a new step works


def test_other_backends_and_distributed_runs_keep_one_pass(numba_backend):
    model = small_lenet()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build((12, 12, 1))
    x = np.zeros((128, 12, 12, 1), np.float32)
    mc.backend.set_backend("numpy")
    assert not split_step.suits(model, x)
    mc.backend.set_backend("numba")

    class TwoRanks:
        size = 2
    model.optimizer._communicator = TwoRanks()
    assert not split_step.suits(model, x)


@pytest.mark.parametrize("build", [small_lenet, normalized_lenet], ids=["lenet", "bn-dropout"])
def test_a_nan_step_changes_nothing(numba_backend, build):
    """Nor the moving statistics of a BatchNormalization."""
    mc.utils.set_random_seed(0)
    model = build()
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((128, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    model.train_on_batch(x, y)
    before = model.get_weights()
    x[100, 3, 3, 0] = np.nan  # in the second half
    model.fit(x, y, batch_size=128, epochs=1, verbose=0, shuffle=False,
              check_numerics=False, terminate_on_nan=True)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


def test_an_error_in_the_second_half_reaches_the_caller(numba_backend, monkeypatch):
    model = small_lenet()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build((12, 12, 1))
    x = np.zeros((128, 12, 12, 1), np.float32)
    calls = []
    forward = Sequential.forward_through

    def failing(self, layers, inputs, training=True):
        calls.append(len(inputs))
        if len(calls) == 2:
            raise RuntimeError("second half failed")
        return forward(self, layers, inputs, training)
    monkeypatch.setattr(Sequential, "forward_through", failing)
    with pytest.raises(RuntimeError, match="second half failed"):
        model.train_on_batch(x, np.zeros(128, int))
    assert sorted(calls) == [64, 64]


def augmented_lenet():
    """Augmentation layers (unseeded: the global generator, beside an unseeded Dropout)
    ahead of the convolutions."""
    L = mc.layers
    return Sequential([
        L.Input((12, 12, 1)),
        L.RandomFlip("horizontal"),
        L.RandomTranslation(0.2, 0.2, seed=3),
        L.RandomRotation(0.1, fill_mode="nearest"),
        L.RandomContrast(0.3, value_range=(0, 1)),
        L.RandomCrop(10, 10),
        Conv2D(4, 3, padding="same", activation="relu"),
        Dropout(0.3),
        L.RandomBrightness(0.1, value_range=(0, 1)),
        MaxPooling2D(2),
        Flatten(),
        Dense(10, activation="softmax"),
    ])


@pytest.mark.parametrize("floatx", ["float64", "float32"])
def test_augmentation_layers_take_the_halves(numba_backend, floatx):
    """One draw for the whole batch, made in the order of the layers; each half applies
    its rows: the whole batch's step, to rounding, and the generators left alike."""
    split, split_losses = train(floatx, build=augmented_lenet)
    after_split = mc.utils.global_rng().random()
    whole, whole_losses = train(floatx, split=False, build=augmented_lenet)
    after_whole = mc.utils.global_rng().random()
    rtol, atol = (1e-10, 1e-12) if floatx == "float64" else (2e-5, 2e-6)
    np.testing.assert_allclose(split_losses, whole_losses, rtol=rtol)
    for a, b in zip(split, whole):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    assert after_split == after_whole


def test_a_random_layer_called_twice_keeps_the_step_whole(numba_backend):
    inputs = mc.Input((12, 12, 1))
    flip = mc.layers.RandomFlip()
    merged = mc.layers.Add()([flip(inputs), flip(inputs)])
    model = mc.Model(inputs, Dense(10, activation="softmax")(Flatten()(merged)))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.build((12, 12, 1)) if not model.built else None
    assert not split_step.suits(model, np.zeros((128, 12, 12, 1), np.float32))
