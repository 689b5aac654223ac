"""`load_mnist`: the book's loader, reading the Parquet tables this workflow writes."""

from pathlib import Path

import numpy as np

from .dims import CLASSES, SIDE
from .network import normalize as to_unit_range
from .tables import read_arrays, read_metadata

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
    return tuple(
        _prepare(*read_arrays(p), normalize, flatten, one_hot_label, _classes(p)) for p in paths
    )


def _classes(path: Path) -> int:
    """The class count a table records (the conversion stores it); the book's ten without one."""
    return int(read_metadata(path).get("classes", CLASSES))


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
