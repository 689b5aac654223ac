"""`load_mnist`: the book's loader, reading the Parquet tables this workflow writes."""

from pathlib import Path

import numpy as np

from .dims import CLASSES, SIDE
from .network import normalize as to_unit_range
from .tables import TableError, read_arrays, read_metadata

SPLITS = ("train", "test")


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dataset: str = "mnist",
    root: str | Path = "results/parquet",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ((x_train, t_train), (x_test, t_test)) as "Deep Learning from Scratch" does.

    normalize: pixels as float32 in [0, 1] (divided by 255); otherwise uint8 0..255.
    flatten: images as (N, 784); otherwise (N, 1, 28, 28).
    one_hot_label: labels as float64 (N, K) one-hot rows (the book builds them on np.zeros), K the
    dataset's class count as its tables record it (10 for MNIST); otherwise uint8 (N,).
    Every array is C-ordered and has the book's dtype, shape and values, bit for bit.
    The tables are `{root}/{dataset}/{train,test}.parquet`, made by `snakemake --cores 4`.
    """
    paths = [Path(root) / dataset / f"{split}.parquet" for split in SPLITS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"load_mnist: {', '.join(missing)} not found. Make the tables with "
            f"`snakemake --cores 4 {' '.join(map(str, paths))}` in the repository folder, "
            "or pass root= the folder that holds them."
        )
    splits = []
    for path in paths:
        x, t = read_arrays(path)
        splits.append(_prepare(x, t, normalize, flatten, one_hot_label, _classes(path, t)))
    return tuple(splits)


# uint8 targets name at most this many classes
_MOST_CLASSES = 256


def _classes(path: Path, targets: np.ndarray) -> int:
    """The class count a table records (the conversion stores it; the book's ten without one),
    checked against the table's targets: each must be one of its classes."""
    given = read_metadata(path).get("classes")
    if given is None:
        classes, source = CLASSES, "the MNIST family's default, without 'classes' in its metadata"
    elif given.isdecimal() and 2 <= int(given) <= _MOST_CLASSES:
        classes, source = int(given), "its metadata gives 'classes'"
    else:
        raise TableError(
            f"{path}: its metadata gives 'classes' as {given!r}, expected a whole number of 2 to "
            f"{_MOST_CLASSES}. Make the table with the workflow (convert_to_parquet), which "
            "records the dataset's class count."
        )
    bad = np.flatnonzero(targets >= classes)
    if bad.size:
        raise TableError(
            f"{path}: target {targets[bad[0]]} in row {bad[0]} is not one of its {classes} classes "
            f"(0..{classes - 1}, as {source}); {bad.size} row(s) are outside. Make the table "
            "with the workflow (convert_to_parquet), which checks every label."
        )
    return classes


def _prepare(x, t, normalize, flatten, one_hot_label, classes):
    # The table reader gives a Fortran-ordered view; the book's arrays are C-ordered, in which its
    # random mini-batches (x[batch_mask]) are gathered from whole rows, much faster.
    x = np.ascontiguousarray(x)
    if normalize:
        x = to_unit_range(x)
    if not flatten:
        x = x.reshape(-1, 1, SIDE, SIDE)
    if one_hot_label:
        t = np.eye(classes)[t]
    return x, t
