"""MNIST pipeline: verified downloads, IDX to Parquet, a small numpy network, reports.

`load_mnist` reads the tables the workflow writes, as "Deep Learning from Scratch" does.
"""

from .errors import MnistPipelineError
from .load import load_mnist

__all__ = ["MnistPipelineError", "load_mnist"]
