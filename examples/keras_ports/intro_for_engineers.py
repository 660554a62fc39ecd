"""keras.io's "Introduction to Keras for engineers" (fchollet, Keras 3's getting-started
guide), its first example, "A MNIST convnet", transcribed with its import changed and
nothing else:

    import keras                  ->  import minicnn as keras

The guide goes on, after ``predictions = model.predict(x_test)``, to cross-framework
custom layers (``keras.ops``, ``keras.random``), training on ``tf.data`` and PyTorch
data loaders and more; that part is not ported here. Its ``pip install`` shell cell is
left out. The backend it sets (``os.environ["KERAS_BACKEND"] = "jax"``) is kept;
minicnn ignores it.

    python examples/keras_ports/intro_for_engineers.py

Like the guide, it writes ``model_at_epoch_1.keras``, ``model_at_epoch_2.keras``, ...
(one per epoch, from ``ModelCheckpoint``) and ``final_model.keras`` into the current
folder. It reads the full MNIST where a copy is installed (Keras's
~/.keras/datasets/mnist.npz or minicnn's places), else the 4,000 + 1,000 image subset
shipped with minicnn.
"""

"""
## Setup

We're going to be using the JAX backend here -- but you can
edit the string below to `"tensorflow"` or `"torch"` and hit
"Restart runtime", and the whole notebook will run just the same!
This entire guide is backend-agnostic.
"""

import numpy as np
import os

os.environ["KERAS_BACKEND"] = "jax"

# Note that Keras should only be imported after the backend
# has been configured. The backend cannot be changed once the
# package is imported.
import minicnn as keras

"""
## A first example: A MNIST convnet

Let's start with the Hello World of ML: training a convnet
to classify MNIST digits.

Here's the data:
"""

# Load the data and split it between train and test sets
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
# Make sure images have shape (28, 28, 1)
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print("y_train shape:", y_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")

"""
Here's our model.

Different model-building options that Keras offers include:

- [The Sequential API](https://keras.io/guides/sequential_model/) (what we use below)
- [The Functional API](https://keras.io/guides/functional_api/) (most typical)
- [Writing your own models yourself via subclassing](https://keras.io/guides/making_new_layers_and_models_via_subclassing/) (for advanced use cases)
"""

# Model parameters
num_classes = 10
input_shape = (28, 28, 1)

model = keras.Sequential(
    [
        keras.layers.Input(shape=input_shape),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(128, kernel_size=(3, 3), activation="relu"),
        keras.layers.Conv2D(128, kernel_size=(3, 3), activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
)

"""
Here's our model summary:
"""

model.summary()

"""
We use the `compile()` method to specify the optimizer, loss function,
and the metrics to monitor. Note that with the JAX and TensorFlow backends,
XLA compilation is turned on by default.
"""

model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(),
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    metrics=[
        keras.metrics.SparseCategoricalAccuracy(name="acc"),
    ],
)

"""
Let's train and evaluate the model. We'll set aside a validation
split of 15% of the data during training to monitor generalization
on unseen data.
"""

batch_size = 128
epochs = 20

callbacks = [
    keras.callbacks.ModelCheckpoint(filepath="model_at_epoch_{epoch}.keras"),
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=2),
]

model.fit(
    x_train,
    y_train,
    batch_size=batch_size,
    epochs=epochs,
    validation_split=0.15,
    callbacks=callbacks,
)
score = model.evaluate(x_test, y_test, verbose=0)

"""
During training, we were saving a model at the end of each epoch. You
can also save the model in its latest state like this:
"""

model.save("final_model.keras")

"""
And reload it like this:
"""

model = keras.saving.load_model("final_model.keras")

"""
Next, you can query predictions of class probabilities with `predict()`:
"""

predictions = model.predict(x_test)

"""
That's it for the basics!
"""
