"""``sample_weight`` and ``class_weight`` as Keras 3 applies them: each batch's loss is
``sum(w * loss) / N`` (metrics unweighted), in the gradient, the logs, ``evaluate``
and the validation data; checked against Keras on the same weights and batches."""
import numpy as np
import pytest

import minicnn as mc


def model(K, L, loss="sparse_categorical_crossentropy"):
    m = K.Sequential([K.Input((5,)), L.Dense(6, activation="tanh", name="h"),
                      L.Dense(3, activation="softmax", name="out")])
    m.compile(K.optimizers.SGD(0.1, momentum=0.9), loss, metrics=["accuracy"])
    return m


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, 3, n),
            rng.uniform(0, 2, n).astype(np.float32))


def pair(keras, loss="sparse_categorical_crossentropy"):
    keras.utils.set_random_seed(2)
    theirs, ours = model(keras, keras.layers, loss), model(mc, mc.layers, loss)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return ours, theirs


def same_weights(ours, theirs):
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mse"])
def test_weighted_steps_equal_keras(keras, backend, loss):
    """Batch 96: on numba the step runs as two halves (minicnn.split_step)."""
    if backend not in mc.backend.available():
        pytest.skip(f"{backend} does not run here")
    mc.backend.set_backend(backend)
    try:
        ours, theirs = pair(keras, loss)
        x, y, w = data()
        target = y if loss.startswith("sparse") else np.eye(3, dtype=np.float32)[y]
        for kwargs in ({"sample_weight": w}, {"class_weight": {0: 0.5, 1: 2.0, 2: 1.0}},
                       {"class_weight": {0: 1.0, 1: 0.0, 2: 3.0}}):
            np.testing.assert_allclose(ours.train_on_batch(x, target, **kwargs),
                                       theirs.train_on_batch(x, target, **kwargs), rtol=1e-5)
            same_weights(ours, theirs)
    finally:
        mc.backend.set_backend("numpy")


def test_evaluate_and_fit_with_weights_equal_keras(keras):
    ours, theirs = pair(keras)
    x, y, w = data(40, seed=1)
    np.testing.assert_allclose(ours.evaluate(x, y, sample_weight=w, batch_size=16),
                               theirs.evaluate(x, y, sample_weight=w, batch_size=16, verbose=0),
                               rtol=1e-5)
    args = dict(batch_size=8, epochs=2, shuffle=False, verbose=0)
    mine = ours.fit(x, y, sample_weight=w, validation_split=0.25, **args).history
    kh = theirs.fit(x, y, sample_weight=w, validation_split=0.25, **args).history
    for key in kh:
        np.testing.assert_allclose(mine[key], kh[key], rtol=1e-5, err_msg=key)
    xv, yv, wv = data(12, seed=2)
    mine = ours.fit(x, y, class_weight={0: 2.0, 1: 1.0, 2: 0.5},
                    validation_data=(xv, yv, wv), **args).history
    kh = theirs.fit(x, y, class_weight={0: 2.0, 1: 1.0, 2: 0.5},
                    validation_data=(xv, yv, wv), **args).history
    for key in kh:
        np.testing.assert_allclose(mine[key], kh[key], rtol=1e-5, err_msg=key)
    same_weights(ours, theirs)


def test_bad_weights_are_named():
    m = model(mc, mc.layers)
    x, y, w = data(10)
    with pytest.raises(ValueError, match=r"sample_weight with one weight per sample, shape "
                                         r"\(10,\). Received: shape \(9,\)"):
        m.fit(x, y, sample_weight=w[:9], verbose=0)
    with pytest.raises(ValueError, match=r"class_weight has no weight for the classes \[2\]"):
        m.fit(x, y, class_weight={0: 1.0, 1: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="negative, NaN or Inf"):
        m.evaluate(x, y, sample_weight=-w)
    with pytest.raises(ValueError, match="sample_weight or class_weight, not both"):
        m.train_on_batch(x, y, sample_weight=w, class_weight={0: 1.0, 1: 1.0, 2: 1.0})
