"""MNIST pipeline: verified downloads, IDX to Parquet, a small numpy network, reports."""
