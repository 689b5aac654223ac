"""Run the real workflow in a temporary copy of the project, against a loopback mirror."""

import gzip
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from mnist_pipeline.network import SHAPES

from idxgen import gz, idx_images, idx_labels

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SHARED_MNIST = REPO.parent / "shared" / "mnist"
SHARED_BOOK = REPO.parent / "shared" / "book"

ARCHIVE_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def make_project(folder: Path) -> Path:
    """Copy what a user clones (Snakefile, workflow/, config/) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", folder)
    for sub in ("workflow", "config"):
        shutil.copytree(REPO / sub, folder / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def archives(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, bytes]:
    """Gzipped IDX archives, by file name, for {"train": (images, labels), "test": ...}."""
    files = {}
    for split, (images, labels) in splits.items():
        files[ARCHIVE_NAMES[f"{split}_images"]] = gz(idx_images(images))
        files[ARCHIVE_NAMES[f"{split}_labels"]] = gz(idx_labels(labels))
    return files


def pins(files: dict[str, bytes]) -> dict[str, dict]:
    """The config's `files` entries pinning these archive bytes."""
    return {
        key: {
            "name": name,
            "size": len(files[name]),
            "sha256": hashlib.sha256(files[name]).hexdigest(),
        }
        for key, name in ARCHIVE_NAMES.items()
    }


def shared_pins() -> dict[str, dict]:
    """The `files` entries pinning the real archives in ../shared/mnist (recompressed: own pins)."""
    sums = dict(
        line.split()[::-1] for line in (SHARED_MNIST / "SHA256SUMS").read_text().splitlines()
    )
    return {
        key: {"name": name, "size": (SHARED_MNIST / name).stat().st_size, "sha256": sums[name]}
        for key, name in ARCHIVE_NAMES.items()
    }


def idx_payload(name: str, header_bytes: int) -> np.ndarray:
    """The bytes after the IDX header of one of the real archives in ../shared/mnist."""
    data = gzip.decompress((SHARED_MNIST / name).read_bytes())
    return np.frombuffer(data, np.uint8, offset=header_bytes)


def random_weights(path: Path, seed: int) -> Path:
    """The book's network with weights drawn at random (normal, sd 0.1), saved as .npz at `path`."""
    rng = np.random.default_rng(seed)
    np.savez(path, **{k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in SHAPES.items()})
    return path


def edit_overlay(project: Path, edit: Callable[[dict], object]) -> None:
    """Change the project's overlay.yaml in place: `edit` mutates it as a dict."""
    path = project / "overlay.yaml"
    overlay = yaml.safe_load(path.read_text())
    edit(overlay)
    path.write_text(yaml.safe_dump(overlay))


def write_overlay(
    project: Path,
    mirrors: list[str],
    files: dict[str, dict],
    for_dataset: str = "mnist",
    **settings,
) -> Path:
    """A --configfile overlay pointing `for_dataset` at `mirrors`, with quick download settings."""
    overlay = {
        "datasets": {for_dataset: {"mirrors": mirrors, "files": files}},
        "download": {"timeout_seconds": 2, "retries": 2, "backoff_seconds": 0.01},
        **settings,
    }
    path = project / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def snakemake(
    project: Path, *args: str, check: bool = True, merged: bool = False
) -> subprocess.CompletedProcess:
    """Run snakemake in `project` with the overlay; on an unexpected failure show its output.
    `merged`: stderr goes into stdout, in the order a terminal would show them."""
    result = subprocess.run(
        [SNAKEMAKE, *args, "--cores", "2", "--configfile", "overlay.yaml"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def planned_jobs(project: Path, *args: str) -> dict[str, int]:
    """Rule name -> job count of what a dry run would do (empty when nothing is to be done)."""
    # "--quiet rules" last: it takes several values, and would swallow targets that followed it
    result = snakemake(project, "--dry-run", *args, "--quiet", "rules")
    counts: dict[str, int] = {}
    in_table = False
    for line in (result.stdout + result.stderr).splitlines():
        parts = line.split()
        if parts == ["job", "count"]:
            in_table = True
        elif in_table and parts and parts[0] == "total":
            break
        elif in_table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
