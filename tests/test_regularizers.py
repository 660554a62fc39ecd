"""Regularizers against Keras 3 (JAX): the penalties and their gradients, the
identifiers ``get`` takes, and a model whose loss, weights and files carry weight and
activity penalties as Keras's do."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import regularizers as R
from minicnn.layers import Conv2D, Dense, Flatten


def _x(dtype="float32", shape=(3, 4)):
    values = np.random.default_rng(1).normal(size=shape)
    values.flat[:3] = [0.0, -0.0, 1e-30]  # the kink of |x|
    return values.astype(dtype)


def _pairs(keras):
    K = keras.regularizers
    return [(R.L1(), K.L1()), (R.L1(0.3), K.L1(0.3)), (R.L2(), K.L2()), (R.L2(0.7), K.L2(0.7)),
            (R.L1L2(), K.L1L2()), (R.L1L2(0.2, 0.05), K.L1L2(0.2, 0.05)),
            (R.L1L2(l2=0.1), K.L1L2(l2=0.1)), (R.L1L2(l1=0.1), K.L1L2(l1=0.1))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_penalty_and_gradient_equal_keras_and_jax_grad(keras, dtype):
    import jax
    import jax.numpy as jnp
    pairs = _pairs(keras)  # made as a Keras user makes them: L1 keeps a float32 factor
    with jax.enable_x64(dtype == "float64"):  # JAX computes in float64 only with x64 on
        _compare_with_keras(keras, dtype, jax, jnp, pairs)


def _compare_with_keras(keras, dtype, jax, jnp, pairs):
    x = _x(dtype)
    for mine, theirs in pairs:
        value = mine(x)
        assert value.shape == () and value.dtype == np.dtype(dtype)
        expected = np.asarray(theirs(jnp.asarray(x)))
        assert expected.dtype == np.dtype(dtype)
        np.testing.assert_allclose(value, expected, rtol=1e-6 if dtype == "float32" else 1e-14)
        grad = jax.grad(lambda v, t=theirs: t(v))(jnp.asarray(x))
        assert mine.gradient(x).dtype == np.dtype(dtype)
        np.testing.assert_allclose(mine.gradient(x), np.asarray(grad), rtol=1e-6, atol=0)
        assert mine.get_config() == theirs.get_config()
        assert R.serialize(mine) == keras.regularizers.serialize(theirs)


def test_slope_of_abs_at_zero_is_one_as_in_jax(keras):
    import jax
    import jax.numpy as jnp
    x = np.array([0.0, -0.0, -1.0, 2.0], "float32")
    assert list(R.L1(1.0).gradient(x)) == [1.0, 1.0, -1.0, 1.0]
    assert list(np.asarray(jax.grad(lambda v: jnp.sum(jnp.abs(v)))(jnp.asarray(x)))) == \
        [1.0, 1.0, -1.0, 1.0]


def test_l1_keeps_its_factor_in_float32_as_keras_does(keras):
    assert R.L1(0.01).get_config() == {"l1": 0.009999999776482582}
    assert keras.regularizers.L1(0.01).get_config() == R.L1(0.01).get_config()
    x = np.ones(3, "float64")
    assert float(R.L1(0.01)(x)) == 3 * float(np.float32(0.01))


@pytest.mark.parametrize("name", ["l1", "l2", "l1l2", "L1", "L2", "L1L2"])
def test_strings_are_kerass_with_its_defaults(keras, name):
    mine, theirs = R.get(name), keras.regularizers.get(name)
    assert type(mine).__name__ == type(theirs).__name__
    assert mine.get_config() == theirs.get_config()


@pytest.mark.parametrize("name", ["l1_l2", "regularizer", "orthogonal_regularizer", "foo",
                                  "L1(0.1)"])
def test_strings_keras_refuses_or_minicnn_lacks_are_refused(keras, name):
    if name not in ("regularizer", "orthogonal_regularizer"):
        with pytest.raises(ValueError):
            keras.regularizers.get(name)
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier"):
        R.get(name)


def test_get_takes_none_instances_classes_and_kerass_dict(keras):
    assert R.get(None) is None
    reg = R.L2(0.3)
    assert R.get(reg) is reg
    assert R.get(R.L1) == R.L1()
    assert R.get(R.serialize(R.L1L2(0.1, 0.2))) == R.L1L2(0.1, 0.2)
    assert R.get(keras.regularizers.serialize(keras.regularizers.L2(0.4))) == R.L2(0.4)
    assert R.get({"class_name": "L2", "config": {"l2": 0.5}}) == R.L2(0.5)  # legacy .h5
    assert set(R.CLASSES) == {"L1", "L2", "L1L2"}


@pytest.mark.parametrize("bad", [
    3, lambda w: 0.0, {"class_name": "Evil", "config": {}},
    {"class_name": "__class__", "config": {}},
    {"class_name": "L2", "config": {"l2": 0.1, "l1": 0.2}},
    {"class_name": "L2", "config": {"l2": -1}}, {"class_name": "L2", "config": {"l2": "x"}},
    {"class_name": "L2", "config": {}, "module": "os"},
    {"class_name": "L2", "config": {}, "registered_name": "my>L2"},
    {"class_name": "L2", "config": [], "extra": 1}])
def test_bad_identifiers_raise_value_error_naming_the_argument(bad):
    for make, arg in [(lambda v: Dense(2, kernel_regularizer=v), "kernel_regularizer"),
                      (lambda v: Conv2D(2, 3, bias_regularizer=v), "bias_regularizer"),
                      (lambda v: Flatten(activity_regularizer=v), "activity_regularizer")]:
        with pytest.raises(ValueError, match=arg):
            make(bad)


def test_factor_checks_are_kerass(keras):
    for cls, arg in [(R.L1, "l1"), (R.L2, "l2")]:
        for bad in (-1, float("nan"), float("inf"), "0.1", np.float32(0.1)):
            with pytest.raises(ValueError, match=f"argument {arg}"):
                cls(bad)
            with pytest.raises(ValueError):
                getattr(keras.regularizers, cls.__name__)(bad)
    assert R.L2(None) == R.L2() and R.L1L2(None, None) == R.L1L2()


# ---------------------------------------------------------------------------------
# a model
# ---------------------------------------------------------------------------------
def _keras_model(keras, softmax=True):
    L, K = keras.layers, keras.regularizers
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        L.Conv2D(3, 3, activation="tanh", kernel_regularizer="l2",
                 bias_regularizer=K.L1(0.05), activity_regularizer=K.L1L2(0.01, 0.02)),
        L.Flatten(activity_regularizer="l1"),
        L.Dense(3, activation="softmax" if softmax else "tanh",
                kernel_regularizer=K.L1L2(0.01, 0.03), bias_regularizer="l2",
                activity_regularizer=K.L2(0.1))])


def _mini_model(softmax=True):
    return mc.Sequential([
        mc.Input((6, 6, 2)),
        Conv2D(3, 3, activation="tanh", kernel_regularizer="l2", bias_regularizer=R.L1(0.05),
               activity_regularizer=R.L1L2(0.01, 0.02)),
        Flatten(activity_regularizer="l1"),
        Dense(3, activation="softmax" if softmax else "tanh",
              kernel_regularizer=R.L1L2(0.01, 0.03), bias_regularizer="l2",
              activity_regularizer=R.L2(0.1))])


def _data(n=5):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6, 6, 2)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, n)]
    return x, y


def _twins(keras, optimizer, loss="categorical_crossentropy", softmax=True):
    k, m = _keras_model(keras, softmax), _mini_model(softmax)
    rng = np.random.default_rng(2)
    weights = [w + 0.1 * rng.normal(size=w.shape).astype("float32") for w in k.get_weights()]
    k.set_weights(weights)
    m.set_weights(weights)
    k.compile(optimizer, loss)
    m.compile(optimizer, loss)
    return k, m


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("softmax", [True, False])
def test_train_on_batch_losses_and_weights_equal_kerass(keras, optimizer, softmax):
    x, y = _data()
    loss = "categorical_crossentropy" if softmax else "mse"
    k, m = _twins(keras, optimizer, loss, softmax)
    if softmax:  # the activity penalty joins at the softmax output: no fused start
        assert not m._fused_softmax_loss(0)
    for _ in range(3):
        np.testing.assert_allclose(m.train_on_batch(x, y), k.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_evaluate_and_fit_include_the_penalties_as_kerass(keras):
    x, y = _data(7)
    k, m = _twins(keras, "sgd")
    plain = float(np.mean(keras.losses.categorical_crossentropy(y, k.predict(x, verbose=0))))
    assert k.evaluate(x, y, verbose=0) > plain + 0.1  # Keras's evaluate includes them
    np.testing.assert_allclose(m.evaluate(x, y, batch_size=7), k.evaluate(x, y, verbose=0),
                               rtol=1e-5)
    # in batches of 3, 3 and 1: the sample-weighted mean of each batch's (mean loss +
    # weight penalties + activity penalties / batch size) is the whole batch's loss.
    # (Keras 3.15 on JAX now and then reports another number for several batches,
    # one run in about 40 here, while each batch alone matches: not compared to it.)
    np.testing.assert_allclose(m.evaluate(x, y, batch_size=3), m.evaluate(x, y, batch_size=7),
                               rtol=1e-6)
    hk = k.fit(x, y, batch_size=7, epochs=2, shuffle=False, verbose=0)
    hm = m.fit(x, y, batch_size=7, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hm.history["loss"], hk.history["loss"], rtol=1e-5)


def test_a_frozen_layers_weight_penalty_is_left_out_its_activity_kept(keras):
    x, y = _data()
    k, m = _twins(keras, "sgd")
    k.layers[0].trainable = False
    m.layers[0].trainable = False
    k.compile("sgd", "categorical_crossentropy")
    m.compile("sgd", "categorical_crossentropy")
    np.testing.assert_allclose(m.evaluate(x, y), k.evaluate(x, y, verbose=0), rtol=1e-5)
    for _ in range(2):
        np.testing.assert_allclose(m.train_on_batch(x, y), k.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_a_shared_layers_activity_penalty_counts_its_last_call_as_in_keras(keras):
    """Keras 3.15 keeps only the last call's activity loss of a layer called several
    times (in the loss and so in the gradient); minicnn does the same."""
    def build(lib, L, reg):
        inp = lib.Input((4,))
        shared = L.Dense(4, activation="tanh", activity_regularizer=reg, name="shared")
        out = L.Dense(2, name="out")(L.Add()([shared(inp), shared(shared(inp))]))
        return lib.Model(inp, out)
    import minicnn.layers as ML
    k = build(keras, keras.layers, keras.regularizers.L2(0.3))
    m = build(mc, ML, R.L2(0.3))
    m.set_weights(k.get_weights())
    k.compile("sgd", "mse")
    m.compile("sgd", "mse")
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")
    np.testing.assert_allclose(m.evaluate(x, y), k.evaluate(x, y, verbose=0), rtol=1e-5)
    for _ in range(3):
        np.testing.assert_allclose(m.train_on_batch(x, y), k.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_float64_numerical_gradient_of_the_regularized_loss():
    """The step's gradient (SGD with learning rate 1 moves each weight by -dL/dw)
    against central differences of the loss evaluate reports, in float64; the weights
    sit away from 0, where |w| has its kink."""
    mc.backend.set_floatx("float64")
    x, y = _data(4)
    m = _mini_model(softmax=False)
    rng = np.random.default_rng(5)
    weights = [np.where(rng.random(w.shape) < 0.5, -1, 1) * (0.1 + 0.3 * rng.random(w.shape))
               for w in m.get_weights()]
    m.set_weights(weights)
    m.compile(mc.optimizers.SGD(learning_rate=1.0), "mse")
    m.train_on_batch(x, y)
    analytic = [w0 - w1 for w0, w1 in zip(weights, m.get_weights())]
    h, worst = 1e-6, 0.0
    for i, w in enumerate(weights):
        for j in rng.choice(w.size, size=min(w.size, 6), replace=False):
            values = []
            for sign in (1, -1):
                moved = [v.copy() for v in weights]
                moved[i].flat[j] += sign * h
                m.set_weights(moved)
                values.append(m.evaluate(x, y, batch_size=4))
            numeric = (values[0] - values[1]) / (2 * h)
            worst = max(worst, abs(numeric - analytic[i].flat[j]) / max(1e-3, abs(numeric)))
    assert worst < 1e-6


def test_dropping_the_penalties_changes_the_numbers(keras):
    """The model test is sensitive to each part: without regularizers the loss and
    the weights after one step differ from Keras's regularized ones."""
    x, y = _data()
    k, m = _twins(keras, "sgd")
    plain = _mini_model()
    for layer in plain.layers:
        layer.activity_regularizer = None
        if hasattr(layer, "kernel_regularizer"):
            layer.kernel_regularizer = layer.bias_regularizer = None
    plain.set_weights(k.get_weights())
    plain.compile("sgd", "categorical_crossentropy")
    assert abs(plain.train_on_batch(x, y) - k.train_on_batch(x, y)) > 1e-2


# ---------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------
def _same_regularizers(mine, theirs):
    for a, b in zip(mine.layers, theirs.layers):
        for arg in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
            ra, rb = getattr(a, arg, None), getattr(b, arg, None)
            assert (ra is None) == (rb is None), (a.name, arg)
            if ra is not None:
                assert type(ra).__name__ == type(rb).__name__
                assert ra.get_config() == rb.get_config(), (a.name, arg)


def test_keras_opens_minicnns_keras_file_with_the_regularizers(keras, tmp_path):
    pytest.importorskip("h5py")
    x, y = _data()
    k, m = _twins(keras, "sgd")
    path = str(tmp_path / "m.keras")
    m.save(path)
    opened = keras.saving.load_model(path)
    _same_regularizers(m, opened)
    np.testing.assert_allclose(opened.evaluate(x, y, verbose=0), m.evaluate(x, y), rtol=1e-5)
    np.testing.assert_allclose(opened.train_on_batch(x, y), m.train_on_batch(x, y), rtol=1e-5)


def test_minicnn_opens_kerass_keras_file_with_the_regularizers(keras, tmp_path):
    pytest.importorskip("h5py")
    x, y = _data()
    k, _ = _twins(keras, "adam")
    k.train_on_batch(x, y)  # an optimizer with state (Adam's slots)
    path = str(tmp_path / "k.keras")
    k.save(path)
    opened = mc.models.load_model(path)
    _same_regularizers(opened, k)
    np.testing.assert_allclose(opened.evaluate(x, y), k.evaluate(x, y, verbose=0), rtol=1e-5)
    for _ in range(2):
        np.testing.assert_allclose(opened.train_on_batch(x, y), k.train_on_batch(x, y),
                                   rtol=1e-5)


def test_npz_round_trip_keeps_the_regularizers(tmp_path):
    x, y = _data()
    m = _mini_model()
    m.compile("adam", "categorical_crossentropy")
    m.train_on_batch(x, y)
    path = str(tmp_path / "m.npz")
    m.save(path)
    again = mc.models.load_model(path)
    _same_regularizers(again, m)
    assert again.layers[1].get_config()["activity_regularizer"] == R.serialize(R.L1())
    np.testing.assert_allclose(again.evaluate(x, y), m.evaluate(x, y), rtol=1e-6)
    np.testing.assert_allclose(again.train_on_batch(x, y), m.train_on_batch(x, y), rtol=1e-6)


def test_a_file_regularizer_is_type_checked_and_looked_up_in_the_closed_table(tmp_path):
    from minicnn import file_checks, loading
    path = str(tmp_path / "m.npz")
    for bad in ("l2", ["L2"], {"class_name": "Evil", "config": {}},
                {"class_name": "L2", "config": {"l2": "0.1"}}):
        with pytest.raises(file_checks.ModelFileError, match="kernel_regularizer"):
            loading.make_layer(path, "Dense", {"units": 2, "kernel_regularizer": bad})
    layer = loading.make_layer(path, "Dense", {"units": 2, "activity_regularizer":
                                               R.serialize(R.L2(0.2))})
    assert layer.activity_regularizer == R.L2(0.2)
