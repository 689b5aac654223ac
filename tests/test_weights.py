"""Weights files: the book's pickle through the restricted unpickler, .npz, and every refusal."""

import codecs
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from mnist_pipeline.network import SHAPES
from mnist_pipeline.weights import WeightsError, load_weights, save_weights, validate_weights

from project import SHARED_BOOK

NUMPY2_GLOBAL = b"cnumpy._core.multiarray\n_reconstruct\n"
NUMPY1_GLOBAL = b"cnumpy.core.multiarray\n_reconstruct\n"


def book_weights(seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.standard_normal(shape).astype(dtype) for key, shape in SHAPES.items()}


def numpy1_flavour(data: bytes) -> bytes:
    """Protocol 0-3 bytes as numpy 1.x writes them: GLOBAL is newline-terminated text, so renaming
    the module changes no offset that matters (protocols before 4 have no frames)."""
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


PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_book_pickle_loads_in_every_protocol(tmp_path, protocol):
    weights = book_weights()
    data = pickle.dumps(weights, protocol=protocol)
    # protocols 0-2 have no bytes: they rebuild each array's data with _codecs.encode(text, latin1)
    assert (b"_codecs" in data) == (protocol <= 2)
    assert_same(load_weights(write(tmp_path / "w.pkl", data)), weights)


@pytest.mark.parametrize("protocol", [0, 1, 2, 3])
def test_book_pickle_numpy1_flavour_loads(tmp_path, protocol):
    weights = book_weights()
    data = numpy1_flavour(pickle.dumps(weights, protocol=protocol))
    assert b"numpy._core" not in data
    assert_same(load_weights(write(tmp_path / "sample_weight.pkl", data)), weights)


def test_the_books_own_file_loads_and_loads_again_in_every_protocol(tmp_path):
    path = SHARED_BOOK / "sample_weight.pkl"
    if not path.exists():
        pytest.skip(f"the book's sample_weight.pkl is not on this machine ({path})")
    loaded = load_weights(path)
    with path.open("rb") as f:
        trusted = pickle.load(f)  # the shared copy of the book's file: trusted, as a reference
    assert_same(loaded, trusted)
    for protocol in PROTOCOLS:
        again = write(tmp_path / f"p{protocol}.pkl", pickle.dumps(trusted, protocol=protocol))
        assert_same(load_weights(again), trusted)


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


@pytest.mark.parametrize("protocol", PROTOCOLS)
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


class _Encode:
    """A pickled call of _codecs.encode with the given arguments."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return codecs.encode, self.args


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("abc", "rot_13"), r"\('abc', 'rot_13'\)"),
        (("abc", "utf-16"), r"\('abc', 'utf-16'\)"),
        (("abc", "latin-1"), r"\('abc', 'latin-1'\)"),
        ((b"abc", "hex_codec"), r"\(b'abc', 'hex_codec'\)"),
        (("abc", "latin1", "strict"), r"\('abc', 'latin1', 'strict'\)"),
        ((123, "latin1"), r"\(123, 'latin1'\)"),
        (("abc",), r"\('abc'\)"),
    ],
)
def test_codecs_encode_is_refused_unless_called_as_numpy_does(tmp_path, protocol, args, shown):
    data = pickle.dumps({**book_weights(), "b1": _Encode(*args)}, protocol=protocol)
    assert b"_codecs" in data
    with pytest.raises(
        WeightsError,
        match=rf"refusing to load .*w\.pkl: it calls _codecs\.encode{shown}; only numpy arrays",
    ):
        load_weights(write(tmp_path / "w.pkl", data))


def test_codecs_encode_gives_bytes_which_are_not_an_array(tmp_path):
    data = pickle.dumps({**book_weights(), "b1": b"\x00" * 200}, protocol=2)
    with pytest.raises(WeightsError, match=r"key 'b1' must be a floating-point .*, found bytes"):
        load_weights(write(tmp_path / "w.pkl", data))


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (pickle.dumps({"W1": codecs.decode}, protocol=2), r"_codecs\.decode"),
        (pickle.dumps({"W1": codecs.lookup}, protocol=0), r"_codecs\.lookup"),
        (pickle.dumps({"W1": bytes}, protocol=2), r"builtins\.bytes|__builtin__\.bytes"),
        # STACK_GLOBAL takes a dotted name: an allowed function's attributes are not allowed
        (b"\x80\x04\x8c\x07_codecs\x8c\x0fencode.__self__\x93.", r"_codecs\.encode\.__self__"),
    ],
)
def test_other_codec_and_builtin_globals_are_refused(tmp_path, data, name):
    with pytest.raises(WeightsError, match=rf"refusing to load .*w\.pkl: it references {name};"):
        load_weights(write(tmp_path / "w.pkl", data))


def test_other_numpy_globals_are_refused(tmp_path):
    # numpy.load could itself unpickle another file: allowed module, refused name.
    path = write(tmp_path / "w.pkl", pickle.dumps({"W1": np.load}, protocol=3))
    with pytest.raises(WeightsError, match=r"w\.pkl: it references numpy\.load; only numpy arrays"):
        load_weights(path)


def test_numpy_scalars_are_refused(tmp_path):
    data = pickle.dumps({**book_weights(), "W1": np.float32(1.0)}, protocol=3)
    with pytest.raises(WeightsError, match=r"references numpy\._?core\.multiarray\.scalar"):
        load_weights(write(tmp_path / "w.pkl", data))


class _Uninitialised:
    """A pickled call that makes an array of `shape` and gives it no data: numpy.ndarray itself,
    or numpy's _reconstruct (whose pickles make an empty array, then fill it from their state)."""

    def __init__(self, make, shape):
        self.make, self.shape = make, shape

    def __reduce__(self):
        if self.make == "ndarray":
            return np.ndarray, (self.shape, np.dtype(np.float32))
        return np.ndarray.__reduce__(np.zeros(1))[0], (np.ndarray, self.shape, b"f")


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("make", ["ndarray", "_reconstruct"])
def test_arrays_of_uninitialised_memory_are_refused(tmp_path, protocol, make):
    # Such a b1 held whatever the process's memory held: weights that changed from run to run.
    data = pickle.dumps({**book_weights(), "b1": _Uninitialised(make, (50,))}, protocol=protocol)
    pattern = rf"refusing to load .*w\.pkl: it calls (numpy\.)?{make}\(.*\(50,\).*uninitialised"
    with pytest.raises(WeightsError, match=pattern + " memory"):
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
    objects = np.full((784, 50), None, dtype=object)
    np.savez(tmp_path / "w.npz", **{**book_weights(), "W1": objects})
    with pytest.raises(
        WeightsError,
        match=r"w\.npz: key 'W1' must be a floating-point .* \(784, 50\), found object",
    ):
        load_weights(tmp_path / "w.npz")


def test_npz_that_is_not_a_zip(tmp_path):
    with pytest.raises(WeightsError, match=r"cannot read .*w\.npz as an \.npz archive"):
        load_weights(write(tmp_path / "w.npz", b"<html>oops</html>" * 10))


def test_weights_saved_in_one_format_and_named_as_the_other_are_named(tmp_path):
    weights = book_weights()
    npz = tmp_path / "w.npz"
    save_weights(npz, weights)
    with pytest.raises(WeightsError, match=r"w\.pkl: a zip archive \(an \.npz\?\), not a pickle; "):
        load_weights(write(tmp_path / "w.pkl", npz.read_bytes()))
    with pytest.raises(
        WeightsError, match=r"w\.npz: a pickle \(the book's format\?\), not an \.npz"
    ):
        load_weights(write(tmp_path / "w.npz", pickle.dumps(weights, protocol=3)))


# --- .npz headers, checked before any array is read ---------------------------------------------

HUGE = {"descr": "<f4", "fortran_order": False, "shape": (2**40,)}


def npy_member(header: dict, payload: bytes = b"\0" * 16, version=(1, 0)) -> bytes:
    """An .npy stream whose header says whatever `header` says, followed by `payload`."""
    f = io.BytesIO()
    writer = {(1, 0): np.lib.format.write_array_header_1_0}.get(version)
    if writer:
        writer(f, header)
    else:  # numpy writes 3.0 only for non-latin-1 field names; same layout as 2.0 here
        np.lib.format.write_array_header_2_0(f, header)
        f.getbuffer()[6:8] = bytes(version)
    return f.getvalue() + payload


def crafted_npz(path, members: dict[str, bytes]) -> None:
    """An .npz holding the book's arrays, with the given members added or replaced."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in book_weights().items():
            if f"{key}.npy" not in members:
                f = io.BytesIO()
                np.lib.format.write_array(f, array)
                archive.writestr(f"{key}.npy", f.getvalue())
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def reads(monkeypatch):
    """The arrays numpy reads from .npy data, as a list that the test can check is empty."""
    calls = []
    real = np.lib.format.read_array

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "read_array", spy)
    return calls


BAD_NPZ = {
    "huge shape": (
        {"b3.npy": npy_member(HUGE)},
        r"w\.npz: key 'b3' has shape \(1099511627776,\), expected \(10,\)",
    ),
    "huge 2-d shape": (
        {"W1.npy": npy_member({**HUGE, "shape": (2**20, 2**20)})},
        r"w\.npz: key 'W1' has shape \(1048576, 1048576\), expected \(784, 50\)",
    ),
    "integer dtype": (
        {"W2.npy": npy_member({**HUGE, "descr": "<i8", "shape": (50, 100)})},
        r"w\.npz: key 'W2' must be a floating-point numpy array of shape \(50, 100\), found int64",
    ),
    "structured dtype": (
        {"b1.npy": npy_member({**HUGE, "descr": [("a", "<f4")], "shape": (50,)})},
        r"key 'b1' must be a floating-point numpy array .*found \[\('a', '<f4'\)\]",
    ),
    "extra huge member": (
        {"W4.npy": npy_member(HUGE)},
        r"w\.npz: unexpected key\(s\) 'W4'; expected exactly",
    ),
    "member without .npy": (
        {"extra.bin": b"hello"},
        r"w\.npz: unexpected key\(s\) 'extra\.bin'",
    ),
    "raw bytes member": (
        {"W3.npy": b"not an npy stream at all"},
        r"cannot read .*w\.npz as an \.npz archive .*ValueError: the magic string is not correct",
    ),
    "npy version 3.0": (
        {"W3.npy": npy_member({**HUGE, "shape": (100, 10)}, version=(3, 0))},
        r"w\.npz: member 'W3\.npy' is \.npy format version 3\.0; expected 1\.0 or 2\.0",
    ),
    "header too long": (
        {"b2.npy": npy_member({**HUGE, "shape": (1,) * 5000})},
        r"cannot read .*w\.npz as an \.npz archive .*ValueError: Header info length",
    ),
    "duplicate member": (
        {"W1": npy_member({**HUGE, "shape": (784, 50)})},
        r"w\.npz: holds 'W1' twice \(members 'W1\.npy' and 'W1'\); save each array once",
    ),
}


def test_npy_named_npz_is_refused_unread(tmp_path):
    with (tmp_path / "w.npz").open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {**HUGE, "descr": "<f4"})
    with pytest.raises(
        WeightsError, match=r"w\.npz: a single \.npy array, not an \.npz archive; save the six"
    ):
        load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_npz_headers_are_refused_before_any_array_is_read(tmp_path, reads, case):
    members, message = BAD_NPZ[case]
    crafted_npz(tmp_path / "w.npz", members)
    with pytest.raises(WeightsError, match=message):
        load_weights(tmp_path / "w.npz")
    assert reads == []


def test_npz_header_with_the_right_shape_but_too_little_data(tmp_path, reads):
    crafted_npz(tmp_path / "w.npz", {"b3.npy": npy_member({**HUGE, "shape": (10,)}, b"\0" * 8)})
    with pytest.raises(
        WeightsError, match=r"cannot read .*w\.npz as an \.npz .*EOF: reading array data, expected"
    ):
        load_weights(tmp_path / "w.npz")
    assert reads  # every header was right: the arrays were read, and one came up short


def test_npz_crafted_with_good_headers_loads(tmp_path, reads):
    crafted_npz(tmp_path / "w.npz", {})
    assert_same(load_weights(tmp_path / "w.npz"), book_weights())
    assert len(reads) == len(SHAPES)


def test_compressed_npz_loads_and_corrupt_compressed_data_is_refused(tmp_path):
    np.savez_compressed(tmp_path / "w.npz", **book_weights())
    assert_same(load_weights(tmp_path / "w.npz"), book_weights())
    data = bytearray((tmp_path / "w.npz").read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(64)
    (tmp_path / "w.npz").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"cannot read .*w\.npz as an \.npz archive"):
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
