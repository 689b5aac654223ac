"""A small EMNIST zip for tests: NIST's layout (gzip/emnist-<split>-...-idx3-ubyte.gz members),
images stored transposed, the letters split labelled 1..26, as the real gzip.zip has them."""

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import yaml

from idxgen import gz, idx_images, idx_labels

# split -> (classes, the label of class 0 in the archives)
SPLITS = {
    "balanced": (47, 0),
    "byclass": (62, 0),
    "bymerge": (47, 0),
    "digits": (10, 0),
    "letters": (26, 1),
    "mnist": (10, 0),
}
BUNDLE = "gzip.zip"
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def member(split: str, part: str, kind: str) -> str:
    """The member's path in the zip: gzip/emnist-letters-train-images-idx3-ubyte.gz."""
    dims = 3 if kind == "images" else 1
    return f"gzip/emnist-{split}-{part}-{kind}-idx{dims}-ubyte.gz"


def upright_split(split: str, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Upright images (rows, 28, 28) and class indices 0..K-1 of one part of a split; every
    class is there once the part has K rows."""
    classes, _ = SPLITS[split]
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(rows, 28, 28), dtype=np.uint8)
    labels = (np.arange(rows) % classes).astype(np.uint8)
    return images, rng.permutation(labels)


def emnist_zip(
    rows: dict[str, int] | None = None,
    *,
    omit: tuple[str, ...] = (),
    compression: int = zipfile.ZIP_DEFLATED,
    seed: int = 0,
) -> tuple[bytes, dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]:
    """The zip's bytes, and {(split, part): (upright images, class indices)} it holds.

    Each image is stored transposed and each label as the archives number it (letters from 1);
    the members named in `omit` are left out.
    """
    rows = rows or {"train": 120, "test": 80}
    data = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for i, (split, (classes, first)) in enumerate(SPLITS.items()):
            for j, (part, count) in enumerate(rows.items()):
                images, labels = upright_split(split, count, seed + 10 * i + j)
                data[(split, part)] = (images, labels)
                stored = {
                    "images": gz(idx_images(images.transpose(0, 2, 1))),
                    "labels": gz(idx_labels(labels + first)),
                }
                for kind, body in stored.items():
                    if member(split, part, kind) not in omit:
                        archive.writestr(member(split, part, kind), body)
            mapping = "".join(f"{k + first} {48 + k}\n" for k in range(classes))
            archive.writestr(f"gzip/emnist-{split}-mapping.txt", mapping)
    return buffer.getvalue(), data


def bundle_pin(bundle: bytes) -> dict:
    return {"name": BUNDLE, "size": len(bundle), "sha256": hashlib.sha256(bundle).hexdigest()}


def write_emnist_overlay(
    project: Path, mirrors: list[str], bundle: bytes | dict, **settings
) -> Path:
    """A --configfile overlay pointing every EMNIST dataset at `mirrors`, pinning the bundle
    (given as bytes, or as the pin itself), with quick download settings."""
    pin = bundle if isinstance(bundle, dict) else bundle_pin(bundle)
    overlay = {
        # copies: shared objects would be written as YAML anchors, one value for all six
        "datasets": {
            f"emnist-{split}": {"mirrors": list(mirrors), "bundle": dict(pin)} for split in SPLITS
        },
        "download": {"timeout_seconds": 2, "retries": 2, "backoff_seconds": 0.01},
        **settings,
    }
    path = project / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path
