"""The AlexNet variant of the Keras notebooks (224x224x3, batch norm, dropout 0.4,
17 classes; 24,834,833 parameters), trained with minicnn.

    python examples/alexnet.py --data flowers17/        # class-per-folder images, read
                                                        # batch by batch as training goes
    python examples/alexnet.py --data 17flowers.npz     # an npz with X and Y arrays
    python examples/alexnet.py --steps 3                # no data: a few steps on the
                                                        # shipped Fashion-MNIST subset
"""
import argparse
import os
import time

import numpy as np

import minicnn as mc
from minicnn.layers import (BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                            MaxPooling2D, Rescaling)
from minicnn.models import Sequential


def alexnet(input_shape=(224, 224, 3), classes=17, rescale=False):
    """The model; ``rescale=True`` puts ``Rescaling(1 / 255)`` first, for images with
    values 0..255 as ``mc.datasets.image_folder`` gives them (no parameters added)."""
    first = [Rescaling(1 / 255, input_shape=input_shape)] if rescale else []
    return Sequential(first + [
        Conv2D(96, (11, 11), strides=(4, 4), padding="valid", activation="relu",
               input_shape=input_shape),
        MaxPooling2D((3, 3), strides=(2, 2)),
        BatchNormalization(),
        Conv2D(256, (5, 5), padding="same", activation="relu"),
        MaxPooling2D((3, 3), strides=(2, 2)),
        BatchNormalization(),
        Conv2D(384, (3, 3), activation="relu"),
        BatchNormalization(),
        Conv2D(384, (3, 3), activation="relu"),
        BatchNormalization(),
        Conv2D(256, (3, 3), activation="relu"),
        MaxPooling2D((3, 3), strides=(2, 2)),
        BatchNormalization(),
        Flatten(),
        Dense(4096, activation="relu"),
        Dropout(0.4),
        BatchNormalization(),
        Dense(4096, activation="relu"),
        Dropout(0.4),
        BatchNormalization(),
        Dense(classes, activation="softmax"),
    ])


def fashion_as_rgb224(count, seed):
    """The shipped Fashion-MNIST subset, each 28x28 image enlarged 8x (nearest
    neighbour) to 224x224 and repeated over 3 channels."""
    (x, y), _ = mc.datasets.load_fashion_mnist(mc.datasets.subset_dir())
    idx = np.random.default_rng(seed).choice(len(x), count, replace=False)
    big = x[idx].repeat(8, axis=1).repeat(8, axis=2)
    return np.repeat(big[..., None], 3, axis=3), y[idx]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="image folder or npz with X and Y")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3,
                        help="training steps when no --data is given")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", default=mc.backend.get_backend(),
                        help=f"one of {mc.backend.available()}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    mc.backend.set_backend(args.backend)
    mc.utils.set_random_seed(args.seed)
    folder = args.data is not None and os.path.isdir(args.data)
    model = alexnet(rescale=folder)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()

    if folder:  # files listed now, each batch decoded on worker threads when it is due
        train, val = mc.datasets.image_folder(args.data, image_size=(224, 224),
                                              batch_size=args.batch_size, seed=args.seed,
                                              validation_split=0.1, subset="both")
        print(f"{len(train.file_paths)} training and {len(val.file_paths)} validation "
              f"images of {len(train.class_names)} classes from {args.data}")
        model.fit(train, validation_data=val, epochs=args.epochs, seed=args.seed)
        return
    if args.data:  # an npz: its arrays in memory
        x, y, classes = mc.datasets.load_image_folder(args.data, (224, 224))
        print(f"{len(x)} images of {len(classes)} classes from {args.data}")
        x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs,
                  validation_split=0.1, seed=args.seed)
        return
    print(f"no --data given: {args.steps} training steps of batch {args.batch_size} on the "
          "shipped Fashion-MNIST subset, enlarged to 224x224x3")
    x, y = fashion_as_rgb224(args.steps * args.batch_size, args.seed)
    x = x.astype(np.float32) / 255
    for step in range(args.steps):
        batch = slice(step * args.batch_size, (step + 1) * args.batch_size)
        start = time.perf_counter()
        loss, accuracy = model.train_on_batch(x[batch], y[batch])
        seconds = time.perf_counter() - start
        print(f"step {step + 1}/{args.steps}: loss {loss:.4f}, accuracy {accuracy:.4f}, "
              f"{seconds:.2f} s ({args.batch_size / seconds:.1f} images/s)")


if __name__ == "__main__":
    main()
