"""The book's 784-50-100-10 network (ch. 3): sigmoid hidden layers, softmax output, float32."""

from collections.abc import Mapping

import numpy as np

from .dims import CLASSES, PIXELS, SIDE
from .errors import MnistPipelineError

SHAPES: dict[str, tuple[int, ...]] = {
    "W1": (PIXELS, 50),
    "b1": (50,),
    "W2": (50, 100),
    "b2": (100,),
    "W3": (100, CLASSES),
    "b3": (CLASSES,),
}
INPUTS = PIXELS


class NetworkError(MnistPipelineError, ValueError):
    """Input the network cannot take (wrong dtype or shape)."""


def _float(a: np.ndarray | float) -> np.ndarray:
    """`a` as float32; a float64 numpy array stays float64 (so gradient checks can run in it)."""
    if isinstance(a, np.ndarray | np.generic) and a.dtype == np.float64:
        return np.asarray(a)
    return np.asarray(a, dtype=np.float32)


def normalize(x: np.ndarray) -> np.ndarray:
    """uint8 pixels (0..255) -> float32 in [0, 1], dividing by 255 as the book does."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise NetworkError(
            f"normalize expects uint8 pixels (0..255), found dtype {x.dtype}; "
            "pass the pixel table as uint8 (or, if it is already scaled to [0, 1], skip normalize)"
        )
    return x.astype(np.float32) / np.float32(255)


def sigmoid(a: np.ndarray | float) -> np.ndarray:
    """1 / (1 + exp(-a)), computed as (1 + tanh(a/2)) / 2, which cannot overflow for any `a`.

    Float32 (float64 stays float64); absolute error within float32 rounding of the book's form.
    """
    a = _float(a)
    half = a.dtype.type(0.5)
    return half * (1 + np.tanh(half * a))


def softmax(a: np.ndarray) -> np.ndarray:
    """Softmax along the last axis (each row of a batch); the row max is subtracted first, so
    logits of any size give finite probabilities that sum to 1. Float32 (float64 stays float64)."""
    a = _float(a)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def as_input(x: np.ndarray) -> np.ndarray:
    """A batch (n, 784) as float32: uint8 pixels are normalized, floats taken as already scaled."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != INPUTS:
        raise NetworkError(
            f"the network takes a batch of shape (n, {INPUTS}) (flattened {SIDE}x{SIDE} images), "
            f"found shape {x.shape}; reshape images with x.reshape(len(x), -1)"
        )
    if x.dtype == np.uint8:
        return normalize(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise NetworkError(
            f"the network takes uint8 pixels or floats in [0, 1], found dtype {x.dtype}"
        )
    return x.astype(np.float32, copy=False)


def forward(weights: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class probabilities, float32 (n, 10), for a batch `x`: uint8 (n, 784) pixels, or floats
    already scaled to [0, 1]. `weights` holds W1, b1, W2, b2, W3, b3 as in `SHAPES`."""
    missing = [key for key in SHAPES if key not in weights]
    if missing:
        raise NetworkError(
            f"the weights lack {', '.join(missing)}; load them with mnist_pipeline.weights"
        )
    w = {key: np.asarray(weights[key], dtype=np.float32) for key in SHAPES}
    z1 = sigmoid(as_input(x) @ w["W1"] + w["b1"])
    z2 = sigmoid(z1 @ w["W2"] + w["b2"])
    return softmax(z2 @ w["W3"] + w["b3"])
