"""MNIST pipeline: verified downloads, IDX to Parquet, a small numpy network, reports.

`load_mnist` reads the tables the workflow writes, as "Deep Learning from Scratch" does.
"""

from .errors import MnistPipelineError

__all__ = ["MnistPipelineError", "load_mnist"]


def __getattr__(name: str):
    # load_mnist is imported on first use: every job imports this package, and a download, say,
    # has no use for numpy and pyarrow.
    if name == "load_mnist":
        from .load import load_mnist

        return load_mnist
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
