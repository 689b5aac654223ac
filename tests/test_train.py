"""Training: the backward pass against finite differences, determinism and errors."""

import re
import warnings
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
import yaml

from mnist_pipeline.config import load_schema, schema_defaults, validate_config
from mnist_pipeline.errors import MnistPipelineError
from mnist_pipeline.network import SHAPES
from mnist_pipeline.plots import plot_training_curves
from mnist_pipeline.train import (
    TrainError,
    TrainSettings,
    accuracy,
    cosine_rate,
    init_weights,
    loss_and_gradients,
    train,
    write_history,
)

from project import REPO


def synthetic(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable uint8 images: one random prototype per class plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(99).integers(0, 256, (10, 784))
    labels = rng.integers(0, 10, count).astype(np.uint8)
    noise = rng.integers(-60, 61, (count, 784))
    return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels


def float64_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # non-zero biases so their gradients are exercised too
    return {key: rng.standard_normal(shape) * 0.5 for key, shape in SHAPES.items()}


def reference_loss(weights, x, t) -> float:
    """Cross-entropy written out independently, in float64."""
    z1 = 1 / (1 + np.exp(-(x @ weights["W1"] + weights["b1"])))
    z2 = 1 / (1 + np.exp(-(z1 @ weights["W2"] + weights["b2"])))
    a3 = z2 @ weights["W3"] + weights["b3"]
    p = np.exp(a3) / np.exp(a3).sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(t)), t])))


# --- the backward pass --------------------------------------------------------------------------


def test_loss_matches_reference():
    weights = float64_weights()
    x = np.random.default_rng(1).random((6, 784))
    t = np.array([0, 3, 9, 3, 1, 7])
    loss, _ = loss_and_gradients(weights, x, t)
    assert loss == pytest.approx(reference_loss(weights, x, t), rel=1e-12)


def test_gradients_match_finite_differences():
    weights = float64_weights()
    rng = np.random.default_rng(2)
    x = rng.random((4, 784))
    t = np.array([2, 5, 5, 8])
    _, grads = loss_and_gradients(weights, x, t)
    h = 1e-6
    for key, value in weights.items():
        assert grads[key].shape == value.shape
        assert grads[key].dtype == np.float64
        flat = rng.choice(value.size, size=min(value.size, 12), replace=False)
        for i in flat:
            where = np.unravel_index(i, value.shape)
            plus, minus = dict(weights), dict(weights)
            plus[key] = value.copy()
            plus[key][where] += h
            minus[key] = value.copy()
            minus[key][where] -= h
            numeric = (reference_loss(plus, x, t) - reference_loss(minus, x, t)) / (2 * h)
            assert grads[key][where] == pytest.approx(numeric, rel=1e-5, abs=1e-9), (key, where)


def test_loss_and_gradients_are_stable_for_huge_logits():
    weights = {key: value * 1000 for key, value in float64_weights().items()}
    x = np.random.default_rng(3).random((5, 784))
    t = np.arange(5)
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grads = loss_and_gradients(weights, x, t)
    assert np.isfinite(loss) and loss > 0
    assert all(np.isfinite(g).all() for g in grads.values())


def test_gradients_stay_float32_in_training():
    weights = init_weights(np.random.default_rng(0))
    x = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    _, grads = loss_and_gradients(weights, x, np.array([1, 2, 3]))
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}


# --- init, accuracy -----------------------------------------------------------------------------


def test_init_weights_shapes_and_scale():
    weights = init_weights(np.random.default_rng(0))
    assert {key: w.shape for key, w in weights.items()} == SHAPES
    assert all(w.dtype == np.float32 for w in weights.values())
    assert not weights["b1"].any()
    assert weights["W1"].std() == pytest.approx(1 / np.sqrt(784), rel=0.05)


def test_accuracy_counts_matches():
    # W3 = 0 and b3 favouring class 3: every image is predicted 3, whatever the pixels.
    weights = init_weights(np.random.default_rng(0))
    weights["W3"][:] = 0
    weights["b3"][3] = 5
    x, _ = synthetic(25, seed=1)
    t = np.array([3] * 7 + [4] * 18)
    assert accuracy(weights, x, t) == 7 / 25
    assert accuracy(weights, x, t, batch_rows=4) == 7 / 25


def test_accuracy_refuses_mismatched_labels():
    x, t = synthetic(5, seed=1)
    with pytest.raises(TrainError, match=r"as many labels as images .*found 5 and 4"):
        accuracy(init_weights(np.random.default_rng(0)), x, t[:4])


def test_cosine_rate_decays_from_peak_to_near_zero():
    assert cosine_rate(0.5, 1, 10) == 0.5
    assert cosine_rate(0.5, 6, 10) == pytest.approx(0.25)  # cos(pi / 2) = 0: half the peak
    assert 0 < cosine_rate(0.5, 10, 10) < 0.5 * 0.025  # (1 + cos(0.9 pi)) / 2 = 0.0245


# --- training -----------------------------------------------------------------------------------


SMALL = TrainSettings(seed=3, epochs=2, batch_size=32, learning_rate=3e-3)


def test_train_learns_and_reports_each_epoch():
    x, t = synthetic(1200, seed=1)
    x_test, t_test = synthetic(300, seed=2)
    lines = []
    weights, history = train(x, t, x_test, t_test, SMALL, log=lines.append)
    assert [r["epoch"] for r in history] == [1, 2]
    assert list(history[0]) == ["epoch", "loss", "train_accuracy", "test_accuracy"]
    assert history[-1]["test_accuracy"] > 0.9
    assert history[-1]["test_accuracy"] == accuracy(weights, x_test, t_test)
    assert history[1]["loss"] < history[0]["loss"]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: loss")
    assert all(re.search(r"test accuracy \d\.\d{4}, \d+\.\d s$", line) for line in lines)
    assert {key: w.shape for key, w in weights.items()} == SHAPES
    assert all(w.dtype == np.float32 for w in weights.values())


def test_train_is_deterministic():
    x, t = synthetic(500, seed=1)
    x_test, t_test = synthetic(100, seed=2)
    runs = [train(x, t, x_test, t_test, SMALL, log=lambda _: None) for _ in range(2)]
    (w1, h1), (w2, h2) = runs
    for key in SHAPES:
        assert w1[key].tobytes() == w2[key].tobytes()
    assert h1 == h2
    other, _ = train(
        x, t, x_test, t_test, TrainSettings(**{**SMALL.__dict__, "seed": 4}), log=lambda _: None
    )
    assert other["W1"].tobytes() != w1["W1"].tobytes()


def test_two_trainings_write_the_same_history_bytes_and_it_plots(tmp_path):
    x, t = synthetic(300, seed=1)
    x_test, t_test = synthetic(100, seed=2)
    paths = [tmp_path / f"run{i}" / "history.csv" for i in (1, 2)]
    for path in paths:
        _, history = train(x, t, x_test, t_test, SMALL, log=lambda _: None)
        write_history(path, history)
    first, second = (path.read_bytes() for path in paths)
    assert first == second
    table = pd.read_csv(paths[0])
    assert list(table.columns) == ["epoch", "loss", "train_accuracy", "test_accuracy"]
    assert list(table["epoch"]) == [1, 2] and table["loss"].is_monotonic_decreasing
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ["history.csv"]

    plot_training_curves(table, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_train_does_not_modify_its_inputs():
    x, t = synthetic(200, seed=1)
    before = x.copy(), t.copy()
    train(x, t, x, t, TrainSettings(epochs=1, batch_size=50), log=lambda _: None)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(t, before[1])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, r"'model\.train\.epochs': 0 is less than the minimum of 1"),
        ({"epochs": 3.0}, r"'model\.train\.epochs': expected integer; found 3\.0 \(float\)"),
        ({"batch_size": 2.5}, r"'model\.train\.batch_size': expected integer; found 2\.5"),
        ({"batch_size": True}, r"'model\.train\.batch_size': expected integer; found True"),
        ({"seed": -1}, r"'model\.train\.seed': -1 is less than the minimum of 0"),
        ({"learning_rate": 0}, r"'model\.train\.learning_rate': 0 is less than or equal to"),
        ({"learning_rate": 1}, r"'model\.train\.learning_rate': 1 is greater than or equal"),
        ({"learning_rate": "0.1"}, r"'model\.train\.learning_rate': expected number; found '0\.1'"),
        ({"learning_rate": float("nan")}, r"'model\.train\.learning_rate': expected a finite"),
        ({"learning_rate": float("inf")}, r"'model\.train\.learning_rate': expected a finite"),
    ],
)
def test_bad_settings(change, message):
    with pytest.raises(TrainError, match=r"training settings: config key " + message):
        TrainSettings(**change)


def test_settings_default_to_the_schema_and_follow_its_bounds():
    # TrainSettings restates no number: its defaults and bounds are the config schema's
    schema = load_schema()
    assert asdict(TrainSettings()) == schema_defaults("model.train", schema)
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for name, value in [
        ("seed", 0), ("seed", -1), ("seed", 2**40), ("seed", 1.0), ("epochs", 1), ("epochs", 0),
        ("batch_size", 10**6), ("batch_size", None), ("learning_rate", 0.999),
        ("learning_rate", 1e-12), ("learning_rate", -0.0), ("learning_rate", float("nan")),
    ]:  # fmt: skip
        changed = {**config, "model": {"train": {**config["model"]["train"], name: value}}}
        by_config = accepts(lambda: validate_config(changed, schema))  # noqa: B023
        assert accepts(lambda: TrainSettings(**{name: value})) == by_config, (name, value)  # noqa: B023


def accepts(check) -> bool:
    try:
        check()
    except MnistPipelineError:
        return False
    return True


def _bad(split):
    x, t = synthetic(10, seed=1)
    return {
        "short labels": (x, t[:9], r"training labels must be integers of shape \(10,\)"),
        "float labels": (x, t.astype(float), r"training labels must be integers .*found float64"),
        "label 10": (
            x,
            np.full(10, 10),
            r"training labels must lie in 0\.\.9 \(10 classes\), found 10\.\.10",
        ),
        "int pixels": (x.astype(np.int64), t, r"training images must be uint8 of shape \(n, 784\)"),
        "3-d images": (x.reshape(10, 28, 28), t, r"found uint8 \(10, 28, 28\)"),
        "empty": (x[:0], t[:0], r"training split is empty"),
    }[split]


@pytest.mark.parametrize(
    "split", ["short labels", "float labels", "label 10", "int pixels", "3-d images", "empty"]
)
def test_bad_training_data(split):
    x, t, message = _bad(split)
    x_ok, t_ok = synthetic(10, seed=2)
    with pytest.raises(TrainError, match=message):
        train(x, t, x_ok, t_ok, SMALL, log=lambda _: None)


def test_bad_test_split_is_named():
    x, t = synthetic(10, seed=1)
    with pytest.raises(TrainError, match=r"test labels must lie in 0\.\.9"):
        train(x, t, x, t + 10, SMALL, log=lambda _: None)
