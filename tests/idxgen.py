"""Make small IDX archives (the MNIST file format) for tests."""

import gzip
import struct

import numpy as np

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
