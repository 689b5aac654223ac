"""The book's network (ch. 3): 784 inputs, sigmoid hidden layers of 50 and 100, a softmax output of
one unit per class (10 in the book), float32."""

from collections.abc import Mapping

import numpy as np

from .dims import CLASSES, PIXELS, SIDE
from .errors import MnistPipelineError


class NetworkError(MnistPipelineError, ValueError):
    """Input the network cannot take (wrong dtype or shape)."""


HIDDEN = (50, 100)  # the book's two hidden layers
INPUTS = PIXELS


def shapes(classes: int = CLASSES) -> dict[str, tuple[int, ...]]:
    """The shape of each weight of the network with `classes` outputs, in the book's order."""
    if classes < 2:
        raise NetworkError(f"a classifier needs at least 2 classes, got {classes}")
    first, second = HIDDEN
    return {
        "W1": (INPUTS, first),
        "b1": (first,),
        "W2": (first, second),
        "b2": (second,),
        "W3": (second, classes),
        "b3": (classes,),
    }


SHAPES = shapes()  # the book's ten-class network


def classes_of(weights: Mapping[str, np.ndarray]) -> int:
    """The number of classes (outputs) of a network's weights: the length of b3."""
    return len(weights["b3"])


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


def softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along `axis` (by default the last: each row of a batch); the max is subtracted
    first, so logits of any size give finite probabilities that sum to 1. Float32 (float64 stays
    float64)."""
    a = _float(a)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _check_batch(x: np.ndarray) -> np.ndarray:
    """`x` as an array of shape (n, 784) of uint8 pixels or floats; anything else raises."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != INPUTS:
        raise NetworkError(
            f"the network takes a batch of shape (n, {INPUTS}) (flattened {SIDE}x{SIDE} images), "
            f"found shape {x.shape}; reshape images with x.reshape(len(x), -1)"
        )
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise NetworkError(
            f"the network takes uint8 pixels or floats in [0, 1], found dtype {x.dtype}"
        )
    return x


def as_input(x: np.ndarray) -> np.ndarray:
    """A batch (n, 784) as float32: uint8 pixels are normalized, floats taken as already scaled."""
    x = _check_batch(x)
    if x.dtype == np.uint8:
        return normalize(x)
    return x.astype(np.float32, copy=False)


# The forward pass runs on blocks of BLOCK_ROWS rows, every block an array of the same shape and
# layout (the last one padded with zeros), so a row's arithmetic never depends on the batch it
# came in: BLAS picks its kernel by matrix size, and without blocks the probabilities of a row
# differed in their last bits between a batch of 7 and one of 1000. 100 rows fit the default
# batch size (and 1000) without padding.
BLOCK_ROWS = 100


def _blocks(x: np.ndarray) -> np.ndarray:
    """The rows of a batch as float32 blocks (k, 784, BLOCK_ROWS), scaled as `as_input` does.

    Each block holds its rows as columns: the tables hand out Fortran-ordered batches, whose
    transpose is copied into this layout without a costly transpose of the pixels.
    """
    x = _check_batch(x)
    n = len(x)
    full, rest = divmod(n, BLOCK_ROWS)
    blocks = np.empty((full + (rest > 0), INPUTS, BLOCK_ROWS), dtype=np.float32)
    columns = x.T  # (784, n)
    parts = [(blocks[:full], columns[:, : full * BLOCK_ROWS].reshape(INPUTS, full, BLOCK_ROWS))]
    if rest:
        blocks[full, :, rest:] = 0
        parts.append((blocks[full, :, :rest], columns[:, full * BLOCK_ROWS :]))
    for out, part in parts:
        if part.ndim == 3:
            part = part.transpose(1, 0, 2)
        if x.dtype == np.uint8:  # the strided bytes copied together first scale faster
            np.divide(np.ascontiguousarray(part), np.float32(255), out=out, dtype=np.float32)
        else:
            out[...] = part
    return blocks


def forward(weights: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class probabilities, float32 (n, classes), for a batch `x`: uint8 (n, 784) pixels, or
    floats already scaled to [0, 1]. `weights` holds W1, b1, W2, b2, W3, b3 as `shapes` gives
    them; the number of classes is that of the weights.

    A row's probabilities are the same, bit for bit, whatever batch it is part of.
    """
    missing = [key for key in SHAPES if key not in weights]
    if missing:
        raise NetworkError(
            f"the weights lack {', '.join(missing)}; load them with mnist_pipeline.weights"
        )
    w = {key: np.asarray(weights[key], dtype=np.float32) for key in SHAPES}
    # Each layer is computed transposed, W.T @ block, one BLAS call per block: the blocks hold
    # their rows as columns already, and this product is faster than block.T @ W.
    z1 = sigmoid(w["W1"].T @ _blocks(x) + w["b1"][:, None])
    z2 = sigmoid(w["W2"].T @ z1 + w["b2"][:, None])
    probs = softmax(w["W3"].T @ z2 + w["b3"][:, None], axis=1)  # (k, classes, BLOCK_ROWS)
    return probs.transpose(0, 2, 1).reshape(-1, classes_of(w))[: len(x)]
