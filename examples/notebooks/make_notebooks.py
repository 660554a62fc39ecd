"""Writes the three notebooks of this folder from the cells below, without outputs:

    python examples/notebooks/make_notebooks.py

The Keras tutorials' demos redone with minicnn, each adding what Keras cannot show.
The cells live here as plain text so a change reads as a diff; tests/test_notebooks.py
executes every notebook (on small data) in CI.
"""
import os

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP = """\
import os, sys
import numpy as np
import minicnn as mc
from minicnn import plot
here = os.path.abspath("")
sys.path.insert(0, os.path.join(here, "..") if os.path.basename(here) == "notebooks" else here)
mc.utils.set_random_seed(0)"""

NOTEBOOKS = {
    "padding_strides_pooling.ipynb": [
        ("md", "# Padding, strides and pooling\n\nThe three demo models of the Keras "
               "tutorials, built with minicnn by changing only the imports, then what Keras "
               "does not show: where the padding goes, `full` padding, min pooling, and a "
               "gradient check."),
        ("code", SETUP + "\nfrom keras_tutorials import padding_demo, strides_demo, pooling_demo"),
        ("code", "for make in (padding_demo, strides_demo, pooling_demo):\n"
                 "    make().summary()"),
        ("md", "## Where the padding goes\n\n`same` with an odd total puts the odd pixel at "
               "the bottom/right (TensorFlow's rule); `full` pads `k - 1` on every side. Both "
               "pictures come from the library's own `resolve_padding`."),
        ("code", "plot.conv_arithmetic(6, 3, strides=2, padding='same')\n"
                 "plot.conv_arithmetic(4, 3, padding='full');"),
        ("code", "from minicnn.layers import Conv2D\n"
                 "for padding in ('valid', 'same', 'full'):\n"
                 "    print(padding, Conv2D(8, 3, padding=padding).compute_output_shape((28, 28, 1)))"),
        ("md", "## Min pooling\n\nKeras has max and average pooling; minicnn adds "
               "`MinPooling2D`, which is max pooling of `-x`, forward and backward."),
        ("code", "from minicnn.layers import MaxPooling2D, MinPooling2D\n"
                 "x = np.random.default_rng(0).integers(-2, 3, (1, 4, 4, 1)).astype('float32')\n"
                 "print(x[0, :, :, 0])\n"
                 "print(MinPooling2D(2).forward(x)[0, :, :, 0])\n"
                 "assert np.array_equal(MinPooling2D(2).forward(x), -MaxPooling2D(2).forward(-x))"),
        ("md", "## The windows as a matrix\n\nEvery convolution here runs as im2col + one "
               "matrix product: each window becomes one row."),
        ("code", "plot.im2col_matrix(np.arange(16).reshape(4, 4), 3, strides=1);"),
        ("md", "## Check a layer's gradients yourself"),
        ("code", "from minicnn.gradcheck import check_layer\n"
                 "rows = check_layer(Conv2D(4, 3, strides=2, padding='same', activation='tanh'),\n"
                 "                   np.random.default_rng(1).standard_normal((2, 7, 7, 3)))\n"
                 "assert all(r['passed'] for r in rows)"),
    ],
    "lenet5_fashion_mnist.ipynb": [
        ("md", "# LeNet-5 on Fashion-MNIST\n\nThe tutorials' LeNet-5, trained with minicnn "
               "(on part of the data so the notebook runs in seconds), then looked into: "
               "training curves, confusion matrix, the first layer's filters, feature maps, "
               "the trace of one training step and a gradient check."),
        ("code", SETUP + "\nfrom lenet5 import lenet5\n"
                 "(x, y), (xt, yt) = mc.datasets.load_fashion_mnist()\n"
                 "x, xt = x[:3000, :, :, None] / np.float32(255), xt[:500, :, :, None] / np.float32(255)\n"
                 "y, yt = y[:3000], yt[:500]"),
        ("code", "model = lenet5()\n"
                 "model.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])\n"
                 "model.summary()\n"
                 "history = model.fit(x, y, batch_size=64, epochs=3, validation_data=(xt, yt), verbose=2)"),
        ("code", "plot.training_curves(history)\n"
                 "plot.confusion_matrix(yt, model.predict(xt));"),
        ("md", "## What the first layer learned, and what it sees"),
        ("code", "plot.filters(model.layers[0])\n"
                 "plot.feature_maps(model, xt[0]);"),
        ("md", "## One training step, layer by layer\n\nForward statistics, then the "
               "gradient handed from layer to layer and the size of each weight's next "
               "update. The model does not change."),
        ("code", "data = model.trace(x[:32], y[:32])"),
        ("code", "from minicnn.gradcheck import check_layer\n"
                 "rows = check_layer(model.layers[0], x[:2])\n"
                 "assert all(r['passed'] for r in rows)"),
    ],
    "alexnet_batchnorm.ipynb": [
        ("md", "# The AlexNet variant, with batch normalization\n\nThe tutorials' AlexNet "
               "(224x224x3, batch norm after each block, dropout 0.4; 24.8 million "
               "parameters), built with minicnn, then a training step on a few images "
               "traced: what batch normalization does to the gradients on their way back."),
        ("code", SETUP + "\nfrom alexnet import alexnet, fashion_as_rgb224\n"
                 "model = alexnet()\n"
                 "model.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])\n"
                 "model.summary()"),
        ("code", "x, y = fashion_as_rgb224(8, seed=0)\n"
                 "x = x.astype('float32') / 255\n"
                 "print(x.shape, y)"),
        ("md", "## One step, traced\n\nRead the `dL/d out` column (the gradient's RMS per "
               "element) from the softmax back to the first convolution. Each batch "
               "normalization multiplies the gradient it passes down by gamma / sigma, "
               "sigma the standard deviation of its own input (gamma starts at 1), after "
               "taking out its components along the batch mean and along x-hat -- so it "
               "*amplifies* "
               "the gradient where a layer's outputs are small -- as at the first block "
               "here, fed by a freshly initialised 11x11 convolution -- and damps it where "
               "they are large: it keeps every layer's input at unit scale, and the "
               "gradients follow."),
        ("code", "data = model.trace(x, y)\n"
                 "for row in data['backward']:\n"
                 "    if row['class'] == 'BatchNormalization':\n"
                 "        gain = row['grad_input_rms'] / row['grad_output_rms']\n"
                 "        print(f\"{row['layer']:<24} passes down {gain:7.2f} x the gradient it receives\")"),
        ("code", "bn = model.layers[2]\n"
                 "before = bn.get_weights()[2].copy()\n"
                 "model.train_on_batch(x, y)\n"
                 "print('moving mean moved by', float(np.abs(bn.get_weights()[2] - before).max()))"),
        ("md", "Filters shaped like the first layer's (11x11x3 each), of a fresh 4-filter "
               "layer at its random start -- what the first layer's 96 look like before "
               "training:"),
        ("code", "from minicnn.layers import Conv2D\n"
                 "small = Conv2D(4, 11, strides=4, input_shape=(224, 224, 3))\n"
                 "small.build((224, 224, 3))\n"
                 "plot.filters(small);"),
    ],
}


def main():
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(text) if kind == "md"
                    else nbformat.v4.new_code_cell(text) for kind, text in cells]
        for number, cell in enumerate(nb.cells):
            cell.id = f"cell-{number}"  # fixed ids: regenerating changes nothing
        path = os.path.join(HERE, name)
        nbformat.write(nb, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
