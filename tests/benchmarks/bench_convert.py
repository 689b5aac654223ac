"""Benchmark IDX -> Parquet conversion against a minimal whole-file reference.

    .venv/bin/python tests/benchmarks/bench_convert.py [--repeats N] [--big-rows N] [--codecs]

Converts the 60,000-row MNIST training split (../shared/mnist, or MNIST_DIR) and a generated
1,000,000-row archive (the real images tiled, or digit-like strokes when the folder is absent).
Every conversion runs in a fresh child process; its peak RSS comes from os.wait4 for that child
(RUSAGE_CHILDREN would report the largest child so far, not this one). The parent imports only
the standard library, so the children do not inherit a large resident set from it.

The reference reads the whole .gz with numpy, builds one pyarrow Table and calls pq.write_table
with the same write options. Bars: ours within 1.5x the reference's time; our
peak RSS for 1,000,000 rows under 600 MB. `--codecs` instead prints size and times per codec,
dictionary, byte-stream split and row-group size (60k split, in-process, interleaved).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parent stays light: numpy is imported in the children only
    import numpy as np

MNIST_DIR = Path(
    os.environ.get("MNIST_DIR", Path(__file__).resolve().parents[3] / "shared" / "mnist")
)
TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TIME_BAR = 1.5
RSS_BAR_MB = 600


# --- children -------------------------------------------------------------------------------


def _convert_ours(images: str, labels: str, dest: str) -> int:
    from mnist_pipeline.tables import convert_idx_to_parquet

    return convert_idx_to_parquet(images, labels, dest, metadata={"dataset": "bench"})


def _convert_reference(images: str, labels: str, dest: str) -> int:
    import gzip

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mnist_pipeline import tables

    with gzip.open(images) as f:
        raw = f.read()
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, tables.N_PIXELS)
    with gzip.open(labels) as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    columns = [pa.array(c) for c in np.ascontiguousarray(x.T)] + [pa.array(y)]
    table = pa.Table.from_arrays(columns, schema=tables.SCHEMA)
    pq.write_table(table, dest, **tables.WRITE_OPTIONS)
    return table.num_rows


def _strokes(count: int, rng: np.random.Generator) -> np.ndarray:
    """Digit-like images: three thick anti-aliased strokes inside the central 20x20, else zero."""
    import numpy as np

    yy, xx = np.mgrid[0:28, 0:28].reshape(2, 1, 1, 784).astype(np.float32)
    a = rng.uniform(5, 23, size=(2, count, 3, 1)).astype(np.float32)
    b = rng.uniform(5, 23, size=(2, count, 3, 1)).astype(np.float32)
    d = b - a
    t = ((yy - a[0]) * d[0] + (xx - a[1]) * d[1]) / np.maximum((d**2).sum(axis=0), 1e-6)
    t = np.clip(t, 0, 1)
    dist = np.hypot(yy - a[0] - t * d[0], xx - a[1] - t * d[1]).min(axis=1)
    return (255 * np.clip(2.0 - dist, 0, 1)).astype(np.uint8)


def _make_big(rows: int, images: str, labels: str) -> None:
    """Write a `rows`-row images/labels archive pair: real images tiled, else generated strokes."""
    import gzip
    import struct

    import numpy as np

    from mnist_pipeline.idx import iter_image_chunks, read_labels

    real = MNIST_DIR / TRAIN[0]
    if real.exists():
        x = np.concatenate(list(iter_image_chunks(real, 65536)))
        y = read_labels(MNIST_DIR / TRAIN[1])
    else:
        rng = np.random.default_rng(0)
        x = np.concatenate([_strokes(5000, rng) for _ in range(12)])
        y = rng.integers(0, 10, size=len(x), dtype=np.uint8)
    with gzip.GzipFile(images, "wb", compresslevel=6, mtime=0) as fi:
        fi.write(struct.pack(">IIII", 2051, rows, 28, 28))
        for first in range(0, rows, len(x)):
            fi.write(x[: rows - first].tobytes())
    with gzip.GzipFile(labels, "wb", compresslevel=6, mtime=0) as fl:
        fl.write(struct.pack(">II", 2049, rows))
        fl.write(np.resize(y, rows).tobytes())
    print("real" if real.exists() else "generated")


def _measure_codecs(repeats: int) -> None:
    """Print size, write time and read times per codec / dictionary / row-group setting."""
    import mnist_pipeline.tables as tables

    images, labels = (str(MNIST_DIR / name) for name in TRAIN)
    configs = [
        (codec, level, dictionary, split, 65536)
        for codec, level in [("zstd", 1), ("zstd", 3), ("lz4", None), ("snappy", None)]
        for dictionary, split in [(True, False), (False, False), (False, True)]
    ] + [("lz4", None, False, True, rg) for rg in (16384, 32768)]
    times: dict[tuple, list[list[float]]] = {c: [[], [], []] for c in configs}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for config in configs:
                codec, level, dictionary, split, rows = config
                tables.WRITE_OPTIONS = {
                    "compression": codec,
                    "compression_level": level,
                    "use_dictionary": dictionary,
                    "use_byte_stream_split": split,
                }
                dest = Path(tmp, "t.parquet")
                t0 = time.perf_counter()
                tables.convert_idx_to_parquet(images, labels, dest, metadata={}, chunk_rows=rows)
                t1 = time.perf_counter()
                tables.read_arrays(dest)
                t2 = time.perf_counter()
                for _ in tables.iter_batches(dest, 100):
                    pass
                t3 = time.perf_counter()
                for slot, seconds in zip(times[config], (t1 - t0, t2 - t1, t3 - t2), strict=True):
                    slot.append(seconds)
                sizes[config] = dest.stat().st_size / 1e6
    print(f"60,000-row split, median of {repeats} (interleaved)")
    header = ("codec", "dict", "split", "rows/rg", "MB", "write s", "read s", "batch s")
    print("{:8} {:5} {:5} {:>7} {:>6} {:>7} {:>6} {:>7}".format(*header))
    for config in configs:
        codec, level, dictionary, split, rg = config
        name = codec if level is None else f"{codec}-{level}"
        write, read, batch = (statistics.median(v) for v in times[config])
        print(
            f"{name:8} {dictionary!s:5} {split!s:5} {rg:>7} {sizes[config]:6.2f} {write:7.2f} "
            f"{read:6.2f} {batch:7.2f}"
        )


def _worker(kind: str, images: str, labels: str, dest: str) -> None:
    start = time.perf_counter()
    rows = (_convert_ours if kind == "ours" else _convert_reference)(images, labels, dest)
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - start}))


# --- parent ---------------------------------------------------------------------------------


def _child(*args: str) -> tuple[str, float, float]:
    """Run this script with `args` in a fresh interpreter: (stdout, wall s, peak RSS MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"child {' '.join(args)} failed with exit code {proc.returncode}")
    return out, wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def _bench(label: str, images: Path, labels: Path, repeats: int, tmp: Path) -> bool:
    runs: dict[str, list[tuple[float, float, float]]] = {"ours": [], "reference": []}
    rows = 0
    for _ in range(repeats):
        for kind in runs:  # interleaved, so load changes hit both alike
            dest = tmp / f"{kind}.parquet"
            out, wall, rss = _child("--worker", kind, str(images), str(labels), str(dest))
            result = json.loads(out)
            rows = result["rows"]
            runs[kind].append((result["seconds"], wall, rss))
            dest.unlink()
    med = {k: [statistics.median(col) for col in zip(*v, strict=True)] for k, v in runs.items()}
    print(f"\n{label}: {rows:,} rows, median of {repeats} runs, each in a fresh process")
    print(f"{'':10} {'rows/s':>10} {'convert s':>9} {'process s':>9} {'peak RSS MB':>11}")
    for kind, (seconds, wall, rss) in med.items():
        print(f"{kind:10} {rows / seconds:10,.0f} {seconds:9.2f} {wall:9.2f} {rss:11.0f}")
    (ours_s, _, ours_rss), (ref_s, _, ref_rss) = med["ours"], med["reference"]
    ratio = ours_s / ref_s
    ok = ratio <= TIME_BAR
    print(f"ours/reference: time {ratio:.2f} (bar {TIME_BAR}), peak RSS {ours_rss / ref_rss:.2f}")
    if rows >= 1_000_000:
        ok &= ours_rss < RSS_BAR_MB
        print(f"our peak RSS {ours_rss:.0f} MB (bar {RSS_BAR_MB} MB)")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="rows of the big archive")
    parser.add_argument("--codecs", action="store_true", help="print the codec choice table")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "IMAGES", "LABELS", "DEST"))
    parser.add_argument("--make-big", nargs=3, metavar=("ROWS", "IMAGES", "LABELS"))
    args = parser.parse_args()
    if args.worker:
        return _worker(*args.worker)
    if args.make_big:
        return _make_big(int(args.make_big[0]), *args.make_big[1:])
    has_real = all((MNIST_DIR / name).exists() for name in TRAIN)
    if args.codecs:
        if not has_real:
            sys.exit(f"--codecs needs the MNIST training split in {MNIST_DIR} (set MNIST_DIR)")
        return _measure_codecs(args.repeats)
    tmp = Path(tempfile.mkdtemp(prefix="bench_convert."))
    try:
        ok = True
        if has_real:
            ok &= _bench("MNIST train", *(MNIST_DIR / n for n in TRAIN), args.repeats, tmp)
        else:
            print(f"{MNIST_DIR} has no MNIST training split: skipping the 60,000-row run")
        images, labels = tmp / "big-images.gz", tmp / "big-labels.gz"
        source, _, _ = _child("--make-big", str(args.big_rows), str(images), str(labels))
        ok &= _bench(f"{source.strip()} images", images, labels, args.repeats, tmp)
    finally:
        shutil.rmtree(tmp)
    print("\nall bars met" if ok else "\nA BAR WAS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
