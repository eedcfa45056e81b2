"""A 2-D convolution layer written with plain numpy and explicit loops.

Running this file builds a random batch of images, pushes it once through
one convolution layer, prints how long the forward pass took and appends
that time (in seconds) as a new line of submission.csv.
"""

import csv
import time

import numpy as np


def relu(values: np.ndarray) -> np.ndarray:
    """Zero out the negative entries."""
    return np.maximum(values, 0.0)


def pad_images(images: np.ndarray, pad: int, fill: float = 0.0) -> np.ndarray:
    """Add `pad` rows and columns of `fill` around every image.

    images: (batch, height, width, channels)
    """
    if pad == 0:
        return images
    return np.pad(
        images,
        ((0, 0), (pad, pad), (pad, pad), (0, 0)),
        mode="constant",
        constant_values=fill,
    )


class Conv2DLayer:
    """A square-kernel convolution over channels-last images."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, activation="relu"):
        # One kernel per output channel: (k, k, in_channels, out_channels).
        self.kernels = np.random.randn(kernel_size, kernel_size, in_channels, out_channels)
        # One bias per output channel.
        self.biases = np.random.randn(out_channels)
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.activation = activation

    def apply_kernel(self, window: np.ndarray, kernel: np.ndarray, bias: float) -> float:
        """One output value: the window times the kernel, summed, plus the bias.

        window and kernel are both (k, k, in_channels).
        """
        return float(np.sum(window * kernel) + bias)

    def forward(self, images: np.ndarray) -> np.ndarray:
        """Convolve a batch of images (batch, height, width, in_channels).

        Returns (batch, out_height, out_width, out_channels).
        """
        batch, height, width, _ = images.shape
        k = self.kernel_size
        out_channels = self.kernels.shape[-1]
        out_height = (height + 2 * self.padding - k) // self.stride + 1
        out_width = (width + 2 * self.padding - k) // self.stride + 1

        padded = pad_images(images, self.padding)
        output = np.zeros((batch, out_height, out_width, out_channels))

        for n in range(batch):
            image = padded[n]
            for row in range(out_height):
                for col in range(out_width):
                    for f in range(out_channels):
                        top = row * self.stride
                        left = col * self.stride
                        window = image[top : top + k, left : left + k, :]
                        kernel = self.kernels[:, :, :, f]
                        bias = self.biases[f]
                        output[n, row, col, f] = self.apply_kernel(window, kernel, bias)

        if self.activation == "relu":
            return relu(output)
        return output


if __name__ == "__main__":
    # A batch of 32 random 64x64 RGB images through 8 filters of 3x3.
    images = np.random.randn(32, 64, 64, 3)
    layer = Conv2DLayer(3, 8, 3, stride=2, padding=2, activation="relu")

    start = time.time()
    result = layer.forward(images)
    elapsed = time.time() - start
    print(f"Output shape: {result.shape}")
    print(f"Time taken for execution: {elapsed} s")

    # Every run adds one line; the latest line is the one that is scored.
    with open("submission.csv", "a+", newline="") as handle:
        csv.writer(handle, delimiter=";").writerow([elapsed])
