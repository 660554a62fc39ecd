"""A small residual network in the functional API, trained on CIFAR-10.

    python examples/resnet_cifar.py                 # CIFAR-10 if a copy is installed
    python examples/resnet_cifar.py --epochs 5 --stages 3

Three stages of residual blocks (``y = relu(x + f(x))``); where a stage halves the
image and doubles the channels, the shortcut is a 1x1 convolution with stride 2 (a
projection) so that ``x`` and ``f(x)`` have one shape; global average pooling and a
softmax layer on top. The graph: the input of each block feeds both the block and its
shortcut, and ``minicnn.network``'s backward walk adds the two gradients there.

CIFAR-10 is read from Keras's folder (~/.keras/datasets/cifar-10-batches-bin/) or
minicnn's places (``minicnn.datasets.load_cifar10``). No redistributable sample of it
exists to ship, so without a copy the example trains on the Fashion-MNIST subset that
ships with minicnn (28x28 grey images), saying so.
"""
import argparse

import numpy as np

import minicnn as mc
from minicnn import layers


def residual_block(x, filters, stride, name):
    """relu(shortcut(x) + bn(conv(relu(bn(conv(x)))))), the shortcut a projection when
    the shape changes."""
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 name=f"{name}_project")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_project_bn")(shortcut)
    return layers.Activation("relu", name=f"{name}_out")(
        layers.Add(name=f"{name}_add")([shortcut, y]))


def resnet(input_shape, classes=10, width=16, stages=3):
    inputs = mc.Input(input_shape, name="image")
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = layers.Activation("relu", name="stem_relu")(
        layers.BatchNormalization(name="stem_bn")(x))
    for stage in range(stages):
        x = residual_block(x, width * 2 ** stage, 1 if stage == 0 else 2, f"stage{stage + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(x)
    return mc.Model(inputs, outputs, name="resnet")


def load_data():
    try:
        (x_train, y_train), (x_test, y_test) = mc.datasets.cifar10.load_data()
        print("CIFAR-10:", len(x_train), "training and", len(x_test), "test images")
    except (FileNotFoundError, ValueError) as exc:
        print(f"no CIFAR-10 copy ({str(exc).splitlines()[0][:120]}...); training on the "
              f"shipped Fashion-MNIST subset instead")
        (x_train, y_train), (x_test, y_test) = mc.datasets.fashion_mnist.load_data()
        x_train, x_test = x_train[..., None], x_test[..., None]
    return ((x_train.astype("float32") / 255, y_train.reshape(-1)),
            (x_test.astype("float32") / 255, y_test.reshape(-1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--stages", type=int, default=3)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--train-images", type=int, default=None,
                        help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default="resnet.npz")
    args = parser.parse_args()
    mc.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data()
    if args.train_images:
        x_train, y_train = x_train[:args.train_images], y_train[:args.train_images]
    model = resnet(x_train.shape[1:], width=args.width, stages=args.stages)
    model.summary()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
              validation_data=(x_test, y_test), seed=args.seed)
    loss, accuracy = model.evaluate(x_test, y_test)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f}")
    if args.save:
        model.save(args.save)
        again = mc.models.load_model(args.save)
        same = np.array_equal(again.predict(x_test[:64]), model.predict(x_test[:64]))
        print(f"saved to {args.save}; reloaded, it predicts the same: {same}")


if __name__ == "__main__":
    main()
