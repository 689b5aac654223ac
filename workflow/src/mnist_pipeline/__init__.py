"""MNIST pipeline: verified downloads, IDX to Parquet, a small numpy network, reports.

`load_mnist` reads the tables the workflow writes, with the semantics of "Deep Learning from Scratch".
"""

from .load import load_mnist

__all__ = ["load_mnist"]
