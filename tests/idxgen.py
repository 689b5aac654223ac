"""Make small IDX archives (the MNIST file format), and pixel tables from them, for tests; and
damage a Parquet file's page the way a bad disk would."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from mnist_pipeline.tables import convert_idx_to_parquet

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def idx_images(images: np.ndarray, magic: int = IMAGES_MAGIC) -> bytes:
    """Raw IDX bytes for uint8 images of shape (count, rows, cols)."""
    count, rows, cols = images.shape
    return struct.pack(">IIII", magic, count, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = LABELS_MAGIC) -> bytes:
    """Raw IDX bytes for uint8 labels of shape (count,)."""
    return struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def gz(data: bytes) -> bytes:
    """gzip bytes reproducibly (no time stamp), as the archives are served."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def random_split(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random images (count, 28, 28) and labels (count,) in 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    return images, labels


def write_pixel_table(dest: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write the images and labels as IDX archives beside `dest` and convert them into `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    images_gz = dest.with_name(f"{dest.stem}-images.gz")
    labels_gz = dest.with_name(f"{dest.stem}-labels.gz")
    images_gz.write_bytes(gz(idx_images(images)))
    labels_gz.write_bytes(gz(idx_labels(labels)))
    convert_idx_to_parquet(images_gz, labels_gz, dest, metadata={})
    return dest


def damage_page(path: Path, column: str, group: int = 0) -> None:
    """Change the last byte of a column chunk's data in the Parquet file `path`, its page header
    untouched."""
    file = pq.ParquetFile(path)
    chunk = file.metadata.row_group(group).column(file.schema_arrow.names.index(column))
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size - 1] ^= 0x55
    path.write_bytes(bytes(data))
