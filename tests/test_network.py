"""The ch. 3 network: normalize, sigmoid, softmax, forward."""

import warnings

import numpy as np
import pytest

from mnist_pipeline.network import (
    SHAPES,
    Network,
    NetworkError,
    forward,
    normalize,
    sigmoid,
    softmax,
)


@pytest.fixture
def strict_floats():
    """Turn numpy overflow, invalid and divide warnings (any warning) into errors in the test."""
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.standard_normal(shape).astype(np.float32) for key, shape in SHAPES.items()}


def book_predict(weights, x):
    """The study note's predict(), in float64, as the reference."""
    w = {key: value.astype(np.float64) for key, value in weights.items()}
    z1 = 1 / (1 + np.exp(-(x @ w["W1"] + w["b1"])))
    z2 = 1 / (1 + np.exp(-(z1 @ w["W2"] + w["b2"])))
    a3 = z2 @ w["W3"] + w["b3"]
    e = np.exp(a3 - a3.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_normalize_divides_by_255():
    out = normalize(np.array([[0, 51, 255]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.float32([[0, 0.2, 1]]))


def test_normalize_refuses_non_uint8():
    with pytest.raises(NetworkError, match=r"expects uint8 pixels \(0\.\.255\), found dtype int32"):
        normalize(np.zeros((1, 784), np.int32))


def test_sigmoid_matches_formula():
    a = np.linspace(-30, 30, 601, dtype=np.float32)
    out = sigmoid(a)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-a.astype(np.float64))), rtol=0, atol=1e-7)


def test_sigmoid_does_not_overflow(strict_floats):
    out = sigmoid(np.float32([-1000, -100, 0, 100, 1000]))
    np.testing.assert_array_equal(out, np.float32([0, 0, 0.5, 1, 1]))
    assert sigmoid(-1000.0).dtype == np.float32


def test_sigmoid_keeps_float64():
    assert sigmoid(np.zeros(3)).dtype == np.float64


def test_softmax_matches_definition():
    a = np.random.default_rng(1).standard_normal((5, 10)).astype(np.float32)
    out = softmax(a)
    assert out.dtype == np.float32
    expected = np.exp(a.astype(np.float64))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_softmax_is_stable_for_huge_logits(strict_floats):
    out = softmax(np.float32([[1000, 0, -1000], [1000, 1000, 1000], [-1000, -1000, 990]]))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(out, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 1]], rtol=1e-6)


def test_softmax_of_one_vector():
    out = softmax(np.float32([0, np.log(3)]))
    np.testing.assert_allclose(out, [0.25, 0.75], rtol=1e-6)


def test_forward_matches_book_predict():
    weights = random_weights()
    pixels = np.random.default_rng(2).integers(0, 256, (64, 784), dtype=np.uint8)
    out = forward(weights, pixels)
    assert out.shape == (64, 10)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, book_predict(weights, pixels / 255.0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


def test_forward_takes_uint8_or_scaled_floats():
    weights = random_weights()
    pixels = np.random.default_rng(3).integers(0, 256, (8, 784), dtype=np.uint8)
    np.testing.assert_array_equal(
        forward(weights, pixels), forward(weights, pixels.astype(np.float64) / 255)
    )


ROWS = 1200
# The book's pickle holds W1 in Fortran order: with it, BLAS computed the last places of a block
# by another kernel, and rows 96..99 of each hundred got other bits in a batch of 7.
ORDERS = ["C", "F"]


def weights_in(order: str, seed: int) -> dict[str, np.ndarray]:
    return {
        k: np.asarray(v * np.float32(0.1), order=order) for k, v in random_weights(seed).items()
    }


@pytest.mark.parametrize("order", ORDERS)
def test_forward_batches_agree_with_single_rows(order):
    weights = weights_in(order, 0)
    pixels = np.random.default_rng(4).integers(0, 256, (200, 784), dtype=np.uint8)
    whole = forward(weights, pixels)
    rows = np.concatenate([forward(weights, pixels[i : i + 1], i) for i in range(200)])
    np.testing.assert_array_equal(whole, rows)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("batch", "offset", "rows"),
    [(1, 0, 150), (7, 3, ROWS), (99, 0, ROWS), (100, 57, ROWS), (333, 1, ROWS), (1000, 0, ROWS)],
)
def test_a_rows_probabilities_do_not_depend_on_its_batch_bit_for_bit(batch, offset, rows, order):
    """Cut the first `rows` rows into batches of `batch` after a first batch of `offset` rows,
    each given the row it starts at: the same float32 bits as all 1200 in one call, whatever
    place a row has in its batch."""
    weights = weights_in(order, 5)
    pixels = np.random.default_rng(6).integers(0, 256, (ROWS, 784), dtype=np.uint8)
    whole = forward(weights, pixels)
    cuts = sorted({0, *range(offset, rows, batch), rows})
    parts = [forward(weights, pixels[a:b], a) for a, b in zip(cuts, cuts[1:], strict=False)]
    np.testing.assert_array_equal(np.concatenate(parts), whole[:rows])
    # The tables hand out Fortran-ordered batches; the layout changes no bit either.
    np.testing.assert_array_equal(
        forward(weights, np.asfortranarray(pixels[:batch])), whole[:batch]
    )


def test_the_weights_memory_order_changes_no_bit():
    pixels = np.random.default_rng(8).integers(0, 256, (300, 784), dtype=np.uint8)
    np.testing.assert_array_equal(
        forward(weights_in("F", 3), pixels), forward(weights_in("C", 3), pixels)
    )


def test_a_network_made_ready_once_gives_what_forward_gives():
    weights = weights_in("F", 2)
    pixels = np.random.default_rng(9).integers(0, 256, (250, 784), dtype=np.uint8)
    network = Network(weights)
    np.testing.assert_array_equal(network(pixels[50:], 50), forward(weights, pixels)[50:])
    assert network.classes == 10


def test_forward_of_no_rows():
    assert forward(random_weights(), np.zeros((0, 784), np.uint8)).shape == (0, 10)


@pytest.mark.parametrize("shape", [(784,), (3, 28, 28), (3, 783)])
def test_forward_refuses_wrong_shape(shape):
    with pytest.raises(NetworkError, match=r"batch of shape \(n, 784\) .*found shape"):
        forward(random_weights(), np.zeros(shape, np.uint8))


def test_forward_refuses_integer_pixels_other_than_uint8():
    with pytest.raises(
        NetworkError, match=r"uint8 pixels or floats in \[0, 1\], found dtype int64"
    ):
        forward(random_weights(), np.zeros((2, 784), np.int64))


def test_forward_names_missing_weights():
    weights = random_weights()
    del weights["b2"], weights["W3"]
    with pytest.raises(NetworkError, match=r"the weights lack b2, W3; load them with"):
        forward(weights, np.zeros((1, 784), np.uint8))
