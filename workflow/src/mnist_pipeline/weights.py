"""Load and save the network's weights: the book's pickle (read safely) or an .npz archive.

A weights file holds exactly the six arrays of `network.shapes(classes)` (the book's ten-class
network unless a dataset has another number of classes). Extra keys are refused rather than
ignored: a file with more arrays (say W4, b4) is a different network, and running only part of it
would give wrong predictions without any error. Floating arrays of any width are accepted and
returned as float32; NaN or infinite values are refused. In an .npz, each member's .npy header
(key, dtype, shape) is checked before any array is read, so a header claiming a huge shape is
refused with a message instead of being allocated.

Pickles are never loaded with `pickle.load`: a pickle can name any Python callable and have it
called while loading. `_WeightsUnpickler` admits only the globals that numpy's pickles of a dict of
arrays need (in every pickle protocol), and nothing else.
"""

import os
import pickle
import reprlib
import zipfile
import zlib
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

from mnist_pipeline.atomic import atomic_path
from mnist_pipeline.dims import CLASSES
from mnist_pipeline.errors import MnistPipelineError
from mnist_pipeline.network import SHAPES, shapes

PICKLE_SUFFIXES = (".pkl", ".pickle")
NPZ_SUFFIX = ".npz"


def _listed(expected: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{key} {shape}" for key, shape in expected.items())


_EXPECTED = _listed(SHAPES)

# The functions numpy's own pickles of arrays call, taken from numpy itself so that this works on
# numpy 1.x and 2.x alike: `_reconstruct` (protocols 0-4; the book's file is protocol 3) and
# `_frombuffer` (protocol 5, pickle.HIGHEST_PROTOCOL). numpy 1.x files name them under `numpy.core`,
# numpy 2 under `numpy._core`; both spellings map to the same object. `dtype` is all a dtype needs;
# numpy scalars (`multiarray.scalar`) are not needed for a dict of arrays and stay refused.
# Protocols 0-2 have no bytes type: they write an array's data as `_codecs.encode(text, "latin1")`,
# which `_latin1_bytes` stands in for (it does that and nothing else). `ndarray` itself and
# `_reconstruct` of any shape but (0,) make arrays of uninitialised memory: both are refused.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_FROMBUFFER = np.ndarray.__reduce_ex__(np.zeros(1), 5)[0]


class _RefusedCall(Exception):
    """A call the pickle asks for that its allowed global refuses (says what the call was)."""


def _latin1_bytes(*args: object) -> bytes:
    """`_codecs.encode` as protocols 0-2 call it, `(text, "latin1")`; any other call is refused."""
    if len(args) != 2 or not isinstance(args[0], str) or args[1] != "latin1":
        raise _RefusedCall(f"calls _codecs.encode({', '.join(map(reprlib.repr, args))})")
    return args[0].encode("latin1")


def _uninitialised(call: str) -> _RefusedCall:
    return _RefusedCall(
        f"calls {call}: an array of uninitialised memory, whose values would differ from run to run"
    )


class _NdarrayClass:
    """`numpy.ndarray` as a pickle names it: the class numpy's pickles hand to `_reconstruct`.
    Called itself, it would make an array of uninitialised memory: refused."""

    def __call__(self, *args: object) -> np.ndarray:
        raise _uninitialised(f"numpy.ndarray({', '.join(map(reprlib.repr, args))})")


_NDARRAY = _NdarrayClass()


def _empty_array(subtype: object, shape: object, dtype: object) -> np.ndarray:
    """`_reconstruct` as numpy's pickles call it: an empty ndarray, which the state that follows
    fills. Any other shape would be uninitialised memory: refused."""
    if subtype is not _NDARRAY or shape != (0,):
        shown = "numpy.ndarray" if subtype is _NDARRAY else reprlib.repr(subtype)
        raise _uninitialised(f"_reconstruct({shown}, {reprlib.repr(shape)}, {dtype!r})")
    return _RECONSTRUCT(np.ndarray, shape, dtype)


_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("_codecs", "encode"): _latin1_bytes,
}


class WeightsError(MnistPipelineError, ValueError):
    """A weights file that cannot be used: unreadable, unsafe, or not this network's weights."""


class _WeightsUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the numpy globals in `_ALLOWED_GLOBALS`."""

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise WeightsError(_refusal(self.source, f"references {module}.{name}")) from None


def _refusal(source: str, what: str) -> str:
    return (
        f"refusing to load {source}: it {what}; only numpy arrays in a dict are allowed (loading a "
        "pickle can run any code it names). If you trust the file, re-save its arrays as an "
        f"{NPZ_SUFFIX} file with keys {_EXPECTED}"
    )


# How each format starts: a zip's first local header, and the PROTO opcode of pickle protocol 2+.
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = pickle.PROTO


def _read_pickle(path: Path) -> object:
    with path.open("rb") as f:
        if f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC:
            raise WeightsError(
                f"{path}: a zip archive (an {NPZ_SUFFIX}?), not a pickle; name it *{NPZ_SUFFIX}"
            )
        f.seek(0)
        try:
            return _WeightsUnpickler(f, str(path)).load()
        except WeightsError:
            raise
        except _RefusedCall as refused:
            raise WeightsError(_refusal(str(path), str(refused))) from None
        # Untrusted bytes can fail in the unpickler in many ways (UnpicklingError, EOFError,
        # TypeError, UnicodeDecodeError, ...): all of them mean the same thing to the user.
        except Exception as error:
            raise WeightsError(
                f"cannot read {path} as a pickle of numpy arrays: {type(error).__name__}: {error}; "
                "is the file complete and the book's sample_weight.pkl format?"
            ) from error


_NPY_MAGIC = np.lib.format.MAGIC_PREFIX
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
# Whatever a damaged or hostile archive makes zipfile, zlib or numpy's .npy reader raise.
_NPZ_ERRORS = (
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,  # a compression method zipfile lacks
    RuntimeError,  # an encrypted member
)


def _read_npz(
    path: Path, expected: Mapping[str, tuple[int, ...]], classes_key: str | None
) -> dict[str, np.ndarray]:
    """The arrays of the .npz `path`, each member's .npy header checked against `expected` first.

    The headers are read and checked before any array is: a header can claim any shape, and
    loading would allocate it (2**40 floats ends in MemoryError, not in a message).
    """
    with path.open("rb") as f:
        head = f.read(len(_NPY_MAGIC))
        if head == _NPY_MAGIC:
            raise WeightsError(
                f"{path}: a single .npy array, not an {NPZ_SUFFIX} archive; save the six arrays "
                f"{_listed(expected)} together with numpy.savez"
            )
        if head.startswith(_PICKLE_MAGIC):
            raise WeightsError(
                f"{path}: a pickle (the book's format?), not an {NPZ_SUFFIX} archive; name it "
                f"*{PICKLE_SUFFIXES[0]}: it is then read with the restricted unpickler"
            )
    try:
        with zipfile.ZipFile(path) as archive:
            members = {}
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if key in members:
                    raise WeightsError(
                        f"{path}: holds {key!r} twice (members {members[key].filename!r} and "
                        f"{info.filename!r}); save each array once"
                    )
                members[key] = info
            _check_keys(members, str(path), expected)
            for key, info in members.items():
                with archive.open(info) as member:
                    dtype, shape = _read_npy_header(member, f"{path}: member {info.filename!r}")
                _check_layout(str(path), key, dtype, shape, expected, classes_key)
            arrays = {}
            for key, info in members.items():
                with archive.open(info) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
            return arrays
    except WeightsError:
        raise
    except _NPZ_ERRORS as error:
        raise WeightsError(
            f"cannot read {path} as an {NPZ_SUFFIX} archive of numeric arrays: "
            f"{type(error).__name__}: {error}; is the file complete and made by numpy.savez?"
        ) from error


def _read_npy_header(member, where: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an .npy stream's header declares, read without reading the data."""
    version = np.lib.format.read_magic(member)
    if version not in _HEADER_READERS:
        raise WeightsError(
            f"{where} is .npy format version {version[0]}.{version[1]}; expected 1.0 or 2.0 "
            "(what numpy.savez writes for float arrays)"
        )
    shape, _, dtype = _HEADER_READERS[version](member)
    return dtype, shape


def load_weights(
    path: str | os.PathLike, classes: int = CLASSES, *, classes_key: str | None = None
) -> dict[str, np.ndarray]:
    """The weights in `path` (the book's pickle, .pkl or .pickle, or an .npz) of the network with
    `classes` outputs, validated, as float32 arrays in the order of `network.shapes`.

    `classes_key` names the config key the class count comes from, for the message that refuses
    weights made for another number of classes."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*PICKLE_SUFFIXES, NPZ_SUFFIX):
        raise WeightsError(
            f"{path}: unknown weights format {suffix or '(no suffix)'!r}; expected the book's "
            f"pickle ({', '.join(PICKLE_SUFFIXES)}) or an {NPZ_SUFFIX} archive"
        )
    try:
        raw = (
            _read_npz(path, shapes(classes), classes_key)
            if suffix == NPZ_SUFFIX
            else _read_pickle(path)
        )
    except FileNotFoundError as error:
        raise WeightsError(
            f"weights file {path} does not exist; check the path (model.weights in the config)"
        ) from error
    except OSError as error:
        raise WeightsError(f"cannot read weights file {path}: {error.strerror or error}") from error
    return validate_weights(raw, str(path), classes, classes_key=classes_key)


def _check_keys(keys: Collection, source: str, expected: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a missing or an extra key: the weights are exactly the arrays of `expected`."""
    missing = [key for key in expected if key not in keys]
    if missing:
        raise WeightsError(
            f"{source}: missing key(s) {', '.join(map(repr, missing))}; expected exactly the "
            f"six arrays {_listed(expected)}, found keys {sorted(map(repr, keys))}"
        )
    extra = sorted(repr(key) for key in keys if key not in expected)
    if extra:
        raise WeightsError(
            f"{source}: unexpected key(s) {', '.join(extra)}; expected exactly "
            f"{_listed(expected)} (the book's network). More arrays mean a different network: "
            "save only these"
        )


def _check_layout(
    source: str,
    key: str,
    dtype: np.dtype | str,
    shape: tuple | None,
    layout: Mapping[str, tuple[int, ...]],
    classes_key: str | None = None,
) -> None:
    """Refuse anything but a floating-point array of shape `layout[key]`. `dtype` is the array's
    dtype, or the type name of a value that is not an array at all."""
    expected = layout[key]
    if not isinstance(dtype, np.dtype) or dtype.kind != "f":
        raise WeightsError(
            f"{source}: key {key!r} must be a floating-point numpy array of shape {expected}, "
            f"found {dtype}"
        )
    if shape == expected:
        return
    message = f"{source}: key {key!r} has shape {shape}, expected {expected}"
    if key in ("W3", "b3") and len(shape) == len(expected) and shape[:-1] == expected[:-1]:
        # Only the output layer differs: weights made for a dataset with other classes.
        where = f"{classes_key} names" if classes_key else "the data has"
        message += (
            f": the output layer of a network of {shape[-1]} classes, but {where} "
            f"{expected[-1]}. Use weights trained on this dataset, or set model.weights to null "
            "to train them here"
        )
    raise WeightsError(message)


def validate_weights(
    weights: Mapping, source: str, classes: int = CLASSES, *, classes_key: str | None = None
) -> dict[str, np.ndarray]:
    """Check keys, dtypes, shapes and values against `network.shapes(classes)`; return float32
    copies in that order.

    `source` names where the weights came from (a file name) in the error messages,
    `classes_key` the config key of the class count.
    """
    expected = shapes(classes)
    if not isinstance(weights, Mapping):
        raise WeightsError(
            f"{source}: expected a dict of numpy arrays ({_listed(expected)}), "
            f"found {type(weights).__name__}"
        )
    _check_keys(weights, source, expected)
    clean = {}
    for key in expected:
        value = weights[key]
        if isinstance(value, np.ndarray):
            _check_layout(source, key, value.dtype, value.shape, expected, classes_key)
        else:
            _check_layout(source, key, type(value).__name__, None, expected, classes_key)
        with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf: refused below
            array = value.astype(np.float32)
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            raise WeightsError(
                f"{source}: key {key!r} has {bad} NaN or infinite value(s) (as float32); "
                "these weights cannot give predictions: retrain or re-export them"
            )
        clean[key] = array
    return clean


def save_weights(path: str | os.PathLike, weights: Mapping[str, np.ndarray]) -> None:
    """Validate `weights` (of a network of any number of classes, as b3 says) and write them to
    the .npz file `path` atomically."""
    path = Path(path)
    if path.suffix.lower() != NPZ_SUFFIX:
        raise WeightsError(
            f"{path}: weights are saved as {NPZ_SUFFIX}, found suffix {path.suffix or '(none)'!r}; "
            f"name the file *{NPZ_SUFFIX}"
        )
    b3 = weights.get("b3") if isinstance(weights, Mapping) else None
    classes = len(b3) if isinstance(b3, np.ndarray) and b3.ndim == 1 else CLASSES
    clean = validate_weights(weights, f"weights to save to {path}", classes)
    # np.savez given a file name would append ".npz" to the temporary name: hand it a file instead
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, **clean)
