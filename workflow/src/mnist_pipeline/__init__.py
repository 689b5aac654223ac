"""MNIST pipeline: verified downloads, IDX to Parquet, a small numpy network, reports.

`load_mnist` reads the tables the workflow writes, as "Deep Learning from Scratch" does.
"""

from .load import load_mnist

__all__ = ["load_mnist"]
