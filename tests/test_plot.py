"""minicnn.plot: every picture is drawn from the library's own numbers and written as
a non-empty PNG; without matplotlib the error says what to install."""
import sys

import numpy as np
import pytest

import minicnn as mc
from minicnn.layers import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D

pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")
from minicnn import plot  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


@pytest.fixture
def trained():
    mc.utils.set_random_seed(0)
    model = mc.Sequential([Conv2D(4, 3, activation="relu", input_shape=(10, 10, 1)),
                           MaxPooling2D(2), Conv2D(5, 3, padding="same", activation="tanh"),
                           AveragePooling2D(2), Flatten(), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((30, 10, 10, 1), dtype=np.float32), np.arange(30) % 3
    history = model.fit(x, y, batch_size=10, epochs=3, verbose=0, validation_split=0.2)
    return model, history, x, y


def test_training_curves(trained, tmp_path):
    import matplotlib.pyplot as plt
    _, history, _, _ = trained
    fig = plot.training_curves(history, tmp_path / "curves.png")
    _png(tmp_path / "curves.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy"]
    ticks = fig.axes[0].get_xticks()
    assert np.allclose(ticks, np.round(ticks))  # whole epochs only
    plt.close(fig)


def test_filters_feature_maps_and_confusion_matrix(trained, tmp_path):
    model, _, x, y = trained
    plot.filters(model.layers[0], tmp_path / "filters.png")
    fig = plot.feature_maps(model, x[0], path=tmp_path / "maps.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "conv2d [0]" in titles and "average_pooling2d [0]" in titles
    fig = plot.confusion_matrix(y, model.predict(x), class_names=["a", "b", "c"],
                                path=tmp_path / "confusion.png")
    correct = int((model.predict(x).argmax(1) == y).sum())
    assert fig.axes[0].get_title() == f"confusion matrix ({correct} of 30 right)"
    for name in ("filters", "maps", "confusion"):
        _png(tmp_path / f"{name}.png")
    assert all(layer._cache is None for layer in model.layers)


def test_feature_maps_follow_a_graph(tmp_path):
    """On a functional graph the maps are each layer's output on the graph's walk (a
    residual Add reads two branches): equal to a feature-extraction model's output."""
    mc.utils.set_random_seed(1)
    inputs = mc.Input((8, 8, 1))
    a = Conv2D(3, 3, padding="same", activation="relu", name="a")(inputs)
    b = Conv2D(3, 3, padding="same", activation="tanh", name="b")(a)
    added = mc.layers.Add(name="add")([a, b])
    out = Dense(2, name="out")(Flatten()(MaxPooling2D(2, name="pool")(added)))
    model = mc.Model(inputs, out)
    x = np.random.default_rng(2).random((1, 8, 8, 1), dtype=np.float32)
    import matplotlib.pyplot as plt
    images = []
    original = plt.Axes.imshow

    def keep(ax, data, *args, **kwargs):
        images.append((ax.get_title(), np.asarray(data)))
        return original(ax, data, *args, **kwargs)
    plt.Axes.imshow = keep
    try:
        plot.feature_maps(model, x, layers=["add", "pool"], path=tmp_path / "maps.png")
    finally:
        plt.Axes.imshow = original
    expected = mc.Model(inputs, added).predict(x)[0]
    shown = [data for _, data in images if data.shape == (8, 8)][1:]  # after the input
    np.testing.assert_allclose(shown[0], expected[:, :, 0], rtol=1e-6)
    _png(tmp_path / "maps.png")


@pytest.mark.parametrize("size, kernel, strides, padding, pads, out", [
    (6, 3, 2, "same", "top 0, bottom 1, left 0, right 1", "output 3x3"),  # odd pixel last
    (5, 3, 1, "same", "top 1, bottom 1, left 1, right 1", "output 5x5"),
    (4, 3, 1, "full", "top 2, bottom 2, left 2, right 2", "output 6x6"),
    ((7, 5), (3, 2), (2, 1), "valid", "top 0, bottom 0, left 0, right 0", "output 3x4"),
])
def test_conv_arithmetic_uses_the_library_padding(tmp_path, size, kernel, strides, padding,
                                                  pads, out):
    fig = plot.conv_arithmetic(size, kernel, strides, padding, path=tmp_path / "a.png")
    left, right = fig.axes[0].get_title(), fig.axes[1].get_title()
    assert pads in left and right.startswith(out)
    _png(tmp_path / "a.png")


def test_im2col_matrix_shows_the_real_matrix(tmp_path):
    from minicnn.ops.im2col import im2col
    x = np.arange(20).reshape(4, 5)
    fig = plot.im2col_matrix(x, (3, 2), strides=(1, 2), path=tmp_path / "m.png")
    _png(tmp_path / "m.png")
    expected = im2col(x[None, :, :, None].astype(float), (3, 2), (1, 2),
                      ((0, 0), (0, 0)), (2, 2)).reshape(4, 6)
    cells = [t.get_text() for t in fig.axes[1].texts]
    assert cells == [f"{v:g}" for v in expected.reshape(-1)]


def test_errors_name_what_is_wrong(trained):
    model, _, x, _ = trained
    with pytest.raises(ValueError, match=r"filters: expected a built Conv2D layer, received "
                                         r"Dense 'dense'"):
        plot.filters(model.layers[-1])
    with pytest.raises(ValueError, match=r"feature_maps: no layer named \['nope'\]"):
        plot.feature_maps(model, x[0], layers=["nope"])
    with pytest.raises(ValueError, match=r"im2col_matrix: expected one \(H, W\) image"):
        plot.im2col_matrix(np.ones((2, 3, 3)), 2)


def test_without_matplotlib_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'minicnn\[plot\]'"):
        plot.conv_arithmetic(4, 3)


def test_confusion_matrix_rows_are_true_classes_columns_predictions():
    """An asymmetric case: three class-0 samples predicted as 1, one class-1 sample
    right. Row = true class (y axis), column = prediction (x axis), in the image and in
    the numbers written on it."""
    import matplotlib.pyplot as plt
    fig = plot.confusion_matrix([0, 0, 0, 1], [1, 1, 1, 1])
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), [[0, 3], [0, 1]])
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    assert cells == {(0, 0): "0", (0, 1): "3", (1, 0): "0", (1, 1): "1"}  # (row, column)
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("true", "predicted")
    plt.close(fig)


def test_filters_share_one_colour_scale_symmetric_about_zero():
    """An all-positive kernel must not show blue: every image is drawn on the same
    scale -L..L (L the largest |weight| of the layer), with a colour bar."""
    import matplotlib.pyplot as plt
    layer = Conv2D(3, 3, input_shape=(5, 5, 2))
    layer.build((5, 5, 2))
    kernel = np.random.default_rng(0).uniform(0.1, 1.0, (3, 3, 2, 3))
    kernel[..., 2] *= 0.01  # a small filter stays pale instead of being stretched
    layer.set_weights([kernel.astype(np.float32), np.zeros(3, np.float32)])
    fig = plot.filters(layer)
    shown = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(shown) == 6
    limit = float(np.abs(kernel.astype(np.float32)).max())
    for image in shown:
        assert np.allclose(image.get_clim(), (-limit, limit))
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    plt.close(fig)


def test_plots_never_change_the_backend(monkeypatch):
    """Without a display (DISPLAY unset: also macOS, Windows and hosted notebooks) the
    backend already chosen stays: here svg, in a notebook the inline one."""
    import matplotlib
    import matplotlib.pyplot as plt
    monkeypatch.delenv("DISPLAY", raising=False)
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        fig = plot.conv_arithmetic(5, 3, strides=2, padding="same")
        assert matplotlib.get_backend() == "svg"
        plt.close(fig)
    finally:
        matplotlib.use(before)


def test_an_executed_notebook_shows_its_figures(monkeypatch):
    """Under Jupyter's own backend (no MPLBACKEND forced, no display) the outputs of the
    padding notebook hold PNG images."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from pathlib import Path
    folder = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("MINICNN_OFFLINE", "1")
    nb = nbformat.read(folder / "padding_strides_pooling.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3
