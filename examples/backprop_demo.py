"""Forward and backward through a small LeNet-style stack, checked numerically.

Runs one batch of random 28x28 images through Conv2D -> AveragePooling2D ->
Conv2D -> MaxPooling2D -> Flatten -> Dense(softmax), computes the cross-entropy,
walks the layers backwards by hand, and compares every weight gradient with
central differences in float64.

    python examples/backprop_demo.py
"""
import numpy as np

import minicnn as mc
from minicnn.gradcheck import directional_error
from minicnn.layers import AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.ops import softmax_cross_entropy_backward, softmax_cross_entropy_forward


def main():
    mc.set_floatx("float64")
    mc.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    layers = [Conv2D(6, 5, padding="same", activation="tanh"), AveragePooling2D(2),
              Conv2D(16, 5, activation="tanh"), MaxPooling2D(2), Flatten(), Dense(10)]
    x = rng.standard_normal((8, 28, 28, 1))
    y = np.eye(10)[rng.integers(0, 10, 8)]

    def loss_of(inp):
        for layer in layers:
            inp = layer.forward(inp, training=True)
        loss, cache = softmax_cross_entropy_forward(inp, y)
        return loss, cache

    loss, cache = loss_of(x)
    print(f"forward: loss = {loss:.6f} for a batch of {len(x)} images")
    grad = softmax_cross_entropy_backward(cache)   # dL/dlogits = (p - y) / N
    for layer in reversed(layers):                 # the backward walk, layer by layer
        grad = layer.backward(grad)
        print(f"  backward through {layer.name:<18} dL/dinput shape {grad.shape}")

    # Check every weight gradient against central differences of the loss along a
    # random direction (two forward passes per weight instead of two per entry).
    checks = [(layer.name, name, value, grad) for layer in layers
              for name, value, grad in zip(layer.weight_names, layer.weights,
                                           layer.get_gradients())]
    for layer_name, name, value, grad in checks:
        err = directional_error(lambda _: loss_of(x)[0], value, grad)
        print(f"{layer_name + '/' + name:<16} shape {str(value.shape):<16} relative error "
              f"vs central differences: {err:.1e}")
        assert err < 1e-6, "backward pass disagrees with the numerical gradient"
    print("all gradients agree")


if __name__ == "__main__":
    main()
