"""Weights files: the book's pickle through the restricted unpickler, .npz, and every refusal."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from mnist_pipeline.network import SHAPES
from mnist_pipeline.weights import WeightsError, load_weights, save_weights, validate_weights

NUMPY2_GLOBAL = b"cnumpy._core.multiarray\n_reconstruct\n"
NUMPY1_GLOBAL = b"cnumpy.core.multiarray\n_reconstruct\n"


def book_weights(seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.standard_normal(shape).astype(dtype) for key, shape in SHAPES.items()}


def numpy1_flavour(data: bytes) -> bytes:
    """Protocol-3 bytes as numpy 1.x writes them: GLOBAL is newline-terminated text, so renaming
    the module changes no offset that matters (protocol 3 has no frames)."""
    assert data.count(NUMPY2_GLOBAL) == 1
    return data.replace(NUMPY2_GLOBAL, NUMPY1_GLOBAL)


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def assert_same(loaded: dict, expected: dict) -> None:
    assert list(loaded) == list(SHAPES)
    for key in SHAPES:
        assert loaded[key].dtype == np.float32
        np.testing.assert_array_equal(loaded[key], expected[key])


# --- the book's pickle --------------------------------------------------------------------------


def test_book_pickle_numpy2_flavour_loads(tmp_path):
    weights = book_weights()
    data = pickle.dumps(weights, protocol=3)
    assert NUMPY2_GLOBAL in data
    assert_same(load_weights(write(tmp_path / "w.pkl", data)), weights)


def test_book_pickle_numpy1_flavour_loads(tmp_path):
    weights = book_weights()
    data = numpy1_flavour(pickle.dumps(weights, protocol=3))
    assert b"numpy._core" not in data
    assert_same(load_weights(write(tmp_path / "sample_weight.pkl", data)), weights)


@pytest.mark.parametrize("protocol", [4, 5])
def test_newer_pickle_protocols_load(tmp_path, protocol):
    weights = book_weights()
    path = write(tmp_path / "w.pickle", pickle.dumps(weights, protocol=protocol))
    assert_same(load_weights(path), weights)


def test_float64_weights_come_back_as_float32(tmp_path):
    weights = book_weights(dtype=np.float64)
    loaded = load_weights(write(tmp_path / "w.pkl", pickle.dumps(weights, protocol=3)))
    for key in SHAPES:
        assert loaded[key].dtype == np.float32
        np.testing.assert_array_equal(loaded[key], weights[key].astype(np.float32))


# --- malicious pickles --------------------------------------------------------------------------


class _System:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


class _Open:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return open, (self.target, "w")


PAYLOADS = {"os.system": (_System, r"posix\.system|nt\.system"), "open": (_Open, r"io\.open")}


@pytest.mark.parametrize("protocol", [3, 4])
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kind, protocol):
    payload, global_name = PAYLOADS[kind]
    target = tmp_path / "pwned"
    data = pickle.dumps({"W1": payload(target)}, protocol=protocol)
    path = write(tmp_path / "evil.pkl", data)
    with pytest.raises(WeightsError, match=rf"refusing to load .*evil\.pkl.*{global_name}"):
        load_weights(path)
    assert not target.exists()

    # Control: the same payload is live. A plain pickle.loads (in a child process) creates it.
    control = tmp_path / "control"
    live = pickle.dumps({"W1": payload(control)}, protocol=protocol)
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=live,
        check=True,
    )
    assert control.exists()


def test_other_numpy_globals_are_refused(tmp_path):
    # numpy.load could itself unpickle another file: allowed module, refused name.
    path = write(tmp_path / "w.pkl", pickle.dumps({"W1": np.load}, protocol=3))
    with pytest.raises(WeightsError, match=r"w\.pkl: it references numpy\.load; only numpy arrays"):
        load_weights(path)


def test_numpy_scalars_are_refused(tmp_path):
    data = pickle.dumps({**book_weights(), "W1": np.float32(1.0)}, protocol=3)
    with pytest.raises(WeightsError, match=r"references numpy\._?core\.multiarray\.scalar"):
        load_weights(write(tmp_path / "w.pkl", data))


# --- wrong content ------------------------------------------------------------------------------


def test_non_dict_pickle(tmp_path):
    data = pickle.dumps(list(book_weights().values()), protocol=3)
    with pytest.raises(WeightsError, match=r"w\.pkl: expected a dict of numpy arrays .*found list"):
        load_weights(write(tmp_path / "w.pkl", data))


def test_truncated_pickle(tmp_path):
    data = pickle.dumps(book_weights(), protocol=3)
    with pytest.raises(
        WeightsError, match=r"cannot read .*w\.pkl as a pickle .*truncated; is the file complete"
    ):
        load_weights(write(tmp_path / "w.pkl", data[: len(data) // 2]))


def test_not_a_pickle(tmp_path):
    with pytest.raises(WeightsError, match=r"cannot read .*w\.pkl as a pickle"):
        load_weights(write(tmp_path / "w.pkl", b"<html>404 Not Found</html>"))


def test_missing_key(tmp_path):
    weights = book_weights()
    del weights["W2"]
    with pytest.raises(WeightsError, match=r"w\.pkl: missing key\(s\) 'W2'; expected exactly"):
        load_weights(write(tmp_path / "w.pkl", pickle.dumps(weights, protocol=3)))


def test_extra_key_is_refused(tmp_path):
    weights = {**book_weights(), "W4": np.zeros((10, 10), np.float32)}
    with pytest.raises(WeightsError, match=r"w\.pkl: unexpected key\(s\) 'W4'.*different network"):
        load_weights(write(tmp_path / "w.pkl", pickle.dumps(weights, protocol=3)))


def test_wrong_shape(tmp_path):
    weights = {**book_weights(), "W2": np.zeros((50, 99), np.float32)}
    with pytest.raises(
        WeightsError, match=r"w\.pkl: key 'W2' has shape \(50, 99\), expected \(50, 100\)"
    ):
        load_weights(write(tmp_path / "w.pkl", pickle.dumps(weights, protocol=3)))


@pytest.mark.parametrize(
    ("value", "found"),
    [(np.zeros(50, np.int64), "int64"), (np.array([1, "a"] * 25, dtype=object), "object")],
)
def test_non_float_array_is_refused(tmp_path, value, found):
    weights = {**book_weights(), "b1": value}
    with pytest.raises(WeightsError, match=rf"key 'b1' must be a floating-point .*found {found}"):
        load_weights(write(tmp_path / "w.pkl", pickle.dumps(weights, protocol=3)))


def test_nan_is_refused():
    weights = book_weights()
    weights["b3"][4] = np.nan
    with pytest.raises(WeightsError, match=r"my source: key 'b3' has 1 NaN or infinite"):
        validate_weights(weights, "my source")


def test_float64_too_large_for_float32_is_refused():
    weights = book_weights(dtype=np.float64)
    weights["W3"][0, 0] = 1e300
    with pytest.raises(
        WeightsError, match=r"key 'W3' has 1 NaN or infinite value\(s\) \(as float32"
    ):
        validate_weights(weights, "x")


def test_validate_returns_copies_in_order():
    weights = dict(reversed(book_weights().items()))
    clean = validate_weights(weights, "x")
    assert list(clean) == list(SHAPES)
    clean["W1"][0, 0] += 1
    assert clean["W1"][0, 0] != weights["W1"][0, 0]


# --- files --------------------------------------------------------------------------------------


def test_unknown_suffix(tmp_path):
    path = write(tmp_path / "w.h5", b"")
    with pytest.raises(WeightsError, match=r"w\.h5: unknown weights format '\.h5'; expected"):
        load_weights(path)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match=r"weights file .*nope\.npz does not exist"):
        load_weights(tmp_path / "nope.npz")


def test_directory_is_unreadable(tmp_path):
    (tmp_path / "dir.pkl").mkdir()
    with pytest.raises(WeightsError, match=r"cannot read weights file .*dir\.pkl"):
        load_weights(tmp_path / "dir.pkl")


def test_npz_round_trip(tmp_path):
    weights = book_weights()
    path = tmp_path / "model" / "weights.npz"
    save_weights(path, weights)
    assert_same(load_weights(path), weights)
    assert sorted(p.name for p in path.parent.iterdir()) == ["weights.npz"]
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(SHAPES)


def test_npz_missing_key(tmp_path):
    weights = book_weights()
    del weights["b1"]
    np.savez(tmp_path / "w.npz", **weights)
    with pytest.raises(WeightsError, match=r"w\.npz: missing key\(s\) 'b1'"):
        load_weights(tmp_path / "w.npz")


def test_npz_with_object_array_is_refused(tmp_path):
    np.savez(tmp_path / "w.npz", **{**book_weights(), "W1": np.array([None, 1], dtype=object)})
    with pytest.raises(WeightsError, match=r"cannot read .*w\.npz as an \.npz archive"):
        load_weights(tmp_path / "w.npz")


def test_npz_that_is_not_a_zip(tmp_path):
    with pytest.raises(WeightsError, match=r"cannot read .*w\.npz as an \.npz archive"):
        load_weights(write(tmp_path / "w.npz", b"<html>oops</html>" * 10))


def test_npy_named_npz_is_not_a_dict(tmp_path):
    with (tmp_path / "w.npz").open("wb") as f:
        np.save(f, np.zeros((784, 50), np.float32))
    with pytest.raises(WeightsError, match=r"w\.npz: expected a dict .*found ndarray"):
        load_weights(tmp_path / "w.npz")


def test_save_refuses_other_suffix(tmp_path):
    with pytest.raises(WeightsError, match=r"w\.pkl: weights are saved as \.npz, found suffix"):
        save_weights(tmp_path / "w.pkl", book_weights())
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_invalid_weights(tmp_path):
    weights = {**book_weights(), "b2": np.zeros(99, np.float32)}
    with pytest.raises(WeightsError, match=r"weights to save to .*w\.npz: key 'b2' has shape"):
        save_weights(tmp_path / "w.npz", weights)
    assert list(tmp_path.iterdir()) == []


def test_save_failure_leaves_nothing(tmp_path, monkeypatch):
    def half_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_weights(tmp_path / "w.npz", book_weights())
    assert list(tmp_path.iterdir()) == []
