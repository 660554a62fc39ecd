"""The padding, strides and pooling demo models and the 32x32x3 LeNet of the Keras
notebooks, written with minicnn: each is built, summarized and run forward once.

    python examples/keras_tutorials.py

Porting from Keras is a change of imports: ``from keras.models import Sequential``
becomes ``from minicnn.models import Sequential``, and the same for the layers.
"""
import numpy as np

from minicnn.layers import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential


def padding_demo():
    """Model A: three 'valid' 3x3 convolutions shrink 28x28 to 22x22 (2,002,698 params)."""
    return Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        Conv2D(32, (3, 3), activation="relu"),
        Conv2D(32, (3, 3), activation="relu"),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ])


def strides_demo():
    """Model B: 'same' padding with stride 2 halves the size each time (85,770 params)."""
    return Sequential([
        Conv2D(32, (3, 3), strides=2, padding="same", activation="relu",
               input_shape=(28, 28, 1)),
        Conv2D(32, (3, 3), strides=2, padding="same", activation="relu"),
        Conv2D(32, (3, 3), strides=2, padding="same", activation="relu"),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ])


def pooling_demo():
    """Model C: max pooling between convolutions (113,386 params)."""
    return Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D((2, 2)),
        Conv2D(32, (3, 3), activation="relu"),
        MaxPooling2D((2, 2)),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(10, activation="softmax"),
    ])


def lenet_cifar():
    """Model D: LeNet on 32x32x3 images (62,006 params)."""
    return Sequential([
        Conv2D(6, (5, 5), activation="tanh", input_shape=(32, 32, 3)),
        AveragePooling2D((2, 2)),
        Conv2D(16, (5, 5), activation="tanh"),
        AveragePooling2D((2, 2)),
        Flatten(),
        Dense(120, activation="tanh"),
        Dense(84, activation="tanh"),
        Dense(10, activation="softmax"),
    ])


MODELS = {"padding": padding_demo, "strides": strides_demo, "pooling": pooling_demo,
          "lenet_cifar": lenet_cifar}


def main():
    rng = np.random.default_rng(0)
    for name, build in MODELS.items():
        model = build()
        print(f"\n== {name}: {build.__doc__.splitlines()[0]}")
        model.summary()
        x = rng.random((4,) + model.input_shape[1:], dtype=np.float32)
        probabilities = model.predict(x)
        print(f"forward pass: input {x.shape} -> output {probabilities.shape}, "
              f"rows sum to {probabilities.sum(axis=1).round(5).tolist()}")


if __name__ == "__main__":
    main()
