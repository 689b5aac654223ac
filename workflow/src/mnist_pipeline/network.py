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
    return _sigmoid_in_place(np.array(_float(a)))[()]  # a copy; [()]: a scalar stays one


def softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along `axis` (by default the last: each row of a batch); the max is subtracted
    first, so logits of any size give finite probabilities that sum to 1. Float32 (float64 stays
    float64)."""
    return _softmax_in_place(np.array(_float(a)), axis)


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
# layout, and each row at the same place of a block whatever batch it comes in: row r of the table
# at place r % BLOCK_ROWS (places no row of the batch fills are zero). BLAS picks its kernel by
# matrix size, and computes the last places of a block (a tail narrower than its kernel) by other
# instructions than the first, with other rounding: a row's probabilities differed in their last
# bits between a batch of 7 and one of 1000 without blocks, and between places 96 and 3 of a
# block. 100 rows fit the default batch size (and 1000) without padding.
BLOCK_ROWS = 100


def _blocks(x: np.ndarray, lead: int = 0) -> np.ndarray:
    """The rows of a batch as float32 blocks (k, 784, BLOCK_ROWS), scaled as `as_input` does:
    row i at place lead + i of the first block and on (0 <= lead < BLOCK_ROWS).

    Each block holds its rows as columns: the tables hand out Fortran-ordered batches, whose
    transpose is copied into this layout without a costly transpose of the pixels.
    """
    x = _check_batch(x)
    n = len(x)
    head = min(n, -lead % BLOCK_ROWS)  # rows of a first block begun at place `lead`
    full, rest = divmod(n - head, BLOCK_ROWS)
    blocks = np.empty(((head > 0) + full + (rest > 0), INPUTS, BLOCK_ROWS), dtype=np.float32)
    columns = x.T  # (784, n)
    parts = []
    if head:
        blocks[0, :, :lead] = 0
        blocks[0, :, lead + head :] = 0  # a batch that ends in its first block
        parts.append((blocks[0, :, lead : lead + head], columns[:, :head]))
    middle = columns[:, head : head + full * BLOCK_ROWS].reshape(INPUTS, full, BLOCK_ROWS)
    parts.append((blocks[(head > 0) : (head > 0) + full], middle.transpose(1, 0, 2)))
    if rest:
        blocks[-1, :, rest:] = 0
        parts.append((blocks[-1, :, :rest], columns[:, n - rest :]))
    for out, part in parts:
        if x.dtype == np.uint8:  # the strided bytes copied together first scale faster
            np.divide(np.ascontiguousarray(part), np.float32(255), out=out, dtype=np.float32)
        else:
            out[...] = part
    return blocks


class Network:
    """The network of `weights` (W1, b1, W2, b2, W3, b3 as `shapes` gives them), made ready once
    for many batches: float32, each weight matrix transposed and each bias a column, as the
    layers use them. The number of classes is that of the weights.

    Calling it on a batch `x` (uint8 (n, 784) pixels, or floats already scaled to [0, 1]) gives
    the class probabilities, float32 (n, classes). `first` is the row of x[0] in its table: a
    row's probabilities are then the same, bit for bit, whatever batch it is part of.
    """

    def __init__(self, weights: Mapping[str, np.ndarray]):
        missing = [key for key in SHAPES if key not in weights]
        if missing:
            raise NetworkError(
                f"the weights lack {', '.join(missing)}; load them with mnist_pipeline.weights"
            )
        # In C order whatever order they come in (the book's pickle holds W1 in Fortran order):
        # BLAS picks its kernel by the layout too, and the same weights in the other order gave
        # other bits.
        w = {key: np.ascontiguousarray(weights[key], dtype=np.float32) for key in SHAPES}
        self.classes = classes_of(w)
        # Each layer is computed transposed, W.T @ block, one BLAS call per block: the blocks
        # hold their rows as columns already, and this product is faster than block.T @ W.
        self._layers = [(w[f"W{i}"].T, w[f"b{i}"][:, None]) for i in (1, 2, 3)]

    def __call__(self, x: np.ndarray, first: int = 0) -> np.ndarray:
        (w1, b1), (w2, b2), (w3, b3) = self._layers
        lead = first % BLOCK_ROWS
        # In place, array by array, as sigmoid and softmax do on their copy: fewer arrays made
        # and fewer numpy calls per batch (a batch of 100 rows is small).
        z1 = _sigmoid_in_place(_plus(w1 @ _blocks(x, lead), b1))
        z2 = _sigmoid_in_place(_plus(w2 @ z1, b2))
        probs = _softmax_in_place(_plus(w3 @ z2, b3), axis=1)  # (k, classes, BLOCK_ROWS)
        return probs.transpose(0, 2, 1).reshape(-1, self.classes)[lead : lead + len(x)]


def _plus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a += b
    return a


def _sigmoid_in_place(a: np.ndarray) -> np.ndarray:
    """sigmoid(a), computed in `a` (float32 or float64)."""
    np.multiply(a, _HALF, out=a)
    np.tanh(a, out=a)
    a += 1
    a *= _HALF
    return a


def _softmax_in_place(a: np.ndarray, axis: int) -> np.ndarray:
    """softmax(a, axis), computed in `a` (float32 or float64)."""
    a -= a.max(axis=axis, keepdims=True)
    np.exp(a, out=a)
    a /= a.sum(axis=axis, keepdims=True)
    return a


_HALF = np.float32(0.5)


def forward(weights: Mapping[str, np.ndarray], x: np.ndarray, first: int = 0) -> np.ndarray:
    """Class probabilities, float32 (n, classes), for a batch `x`: uint8 (n, 784) pixels, or
    floats already scaled to [0, 1], by the network of `weights` (see `Network`, which makes
    the weights ready once for many batches).

    `first` is the row of x[0] in its table: a row's probabilities are then the same, bit for
    bit, whatever batch it is part of.
    """
    return Network(weights)(x, first)
