"""Inference benchmark: `predict_shard` against a minimal numpy reference, with per-run peak RSS.

Not a test. Run:  .venv/bin/python tests/benchmarks/bench_predict.py [--workdir DIR]

Cases: the real 10,000-row MNIST test split (converted with `convert_idx_to_parquet`; skipped when
the archives are absent) and a 1,000,000-row table (the real test images tiled, else generated
strokes), each at batch 1000 and at the config default 100. Every run is a fresh subprocess, so
its peak RSS (`os.wait4`) is its own; rows/s comes from a timer inside the child around the work
only, and the wall time outside (start-up, imports, work) is shown too. Medians of the repeats.
Bars: ours within 1.5x of the reference's rows/s; ours under 600 MB peak RSS for 1,000,000 rows
at batch 1000. Exit status 1 when a bar is missed.

The parent imports only the standard library and builds nothing itself: a child's ru_maxrss
starts at its parent's peak RSS (they share memory until exec), so a heavy parent would inflate
every figure. numpy, pyarrow and the package are imported in the children only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parent stays light: numpy is imported in the children only
    import numpy as np

PACKAGE = Path(__file__).resolve().parents[2] / "workflow" / "src" / "mnist_pipeline"
MNIST = Path(__file__).resolve().parents[3] / "shared" / "mnist"
TEST_ARCHIVES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MAX_SLOWDOWN = 1.5
MAX_RSS_MB = 600
RSS_BAR_BATCH = 1000
SEED = 0


@dataclass(frozen=True)
class Run:
    """One measured subprocess."""

    inside_s: float
    outside_s: float
    peak_mb: float
    rows: int
    counts: tuple[int, ...]


def code_hash(*names: str) -> str:
    """A short hash of package modules: which code was measured (others edit it meanwhile)."""
    return sha256(b"".join((PACKAGE / n).read_bytes() for n in names)).hexdigest()[:10]


# --- children: inputs ---------------------------------------------------------------------------


def write_tiled_archives(
    images: np.ndarray, labels: np.ndarray, rows: int, images_gz: Path, labels_gz: Path
) -> None:
    """Gzipped IDX archives of `rows` rows cycling through `images` (n, 784) / `labels`."""
    import gzip
    import struct

    import numpy as np

    from mnist_pipeline.atomic import atomic_path

    with atomic_path(images_gz) as tmp, gzip.open(tmp, "wb", compresslevel=1) as out:
        out.write(struct.pack(">IIII", 2051, rows, 28, 28))
        for lo in range(0, rows, len(images)):
            out.write(images[: rows - lo].tobytes())
    with atomic_path(labels_gz) as tmp, gzip.open(tmp, "wb", compresslevel=1) as out:
        out.write(struct.pack(">II", 2049, rows))
        out.write(np.resize(labels, rows).tobytes())


def build_inputs(workdir: Path, mnist: Path, rows: int) -> dict:
    """Tables (by case) and weights in `workdir`; tables are reused while tables.py is unchanged."""
    import numpy as np
    from bench_convert import _strokes  # digit-like images, as that benchmark generates them

    from mnist_pipeline.idx import iter_image_chunks, read_labels
    from mnist_pipeline.network import SHAPES
    from mnist_pipeline.tables import convert_idx_to_parquet
    from mnist_pipeline.weights import save_weights

    rng = np.random.default_rng(SEED)
    weights = workdir / "weights.npz"
    scale = np.float32(0.1)
    save_weights(
        weights, {k: rng.standard_normal(s, np.float32) * scale for k, s in SHAPES.items()}
    )
    folder = workdir / f"tables-{code_hash('tables.py', 'idx.py')}"
    real = [mnist / name for name in TEST_ARCHIVES]
    tables = {}
    if all(path.exists() for path in real):
        tables["test 10k"] = folder / "test.parquet"
        if not tables["test 10k"].exists():
            convert_idx_to_parquet(*real, tables["test 10k"], metadata={"source": str(mnist)})
    large = f"{rows:,} rows"
    tables[large] = folder / f"tiled-{rows}.parquet"
    if not tables[large].exists():
        if "test 10k" in tables:
            images = np.concatenate(list(iter_image_chunks(real[0], 10_000)))
            labels, origin = read_labels(real[1]), "real test images"
        else:
            images = _strokes(10_000, rng)
            labels, origin = rng.integers(0, 10, 10_000, dtype=np.uint8), "generated strokes"
        started = time.perf_counter()
        archives = folder / "tiled-images.gz", folder / "tiled-labels.gz"
        write_tiled_archives(images, labels, rows, *archives)
        convert_idx_to_parquet(*archives, tables[large], metadata={"tiled": origin})
        for path in archives:
            path.unlink()
        seconds = time.perf_counter() - started
        print(f"built {tables[large]} from {origin} in {seconds:.0f} s", file=sys.stderr)
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {
        "tables": {case: str(path) for case, path in tables.items()},
        "weights": str(weights),
        "versions": f"numpy {np.__version__}, BLAS {blas.get('name')} {blas.get('version')}",
    }


# --- children: the two implementations ---------------------------------------------------------


def run_ours(table: str, weights: str, batch_rows: int, dest: str) -> tuple[float, int, None]:
    """What the predict rule does: shard 1 of 1, predictions written to `dest`."""
    from mnist_pipeline.inference import predict_shard
    from mnist_pipeline.weights import load_weights

    w = load_weights(weights)
    started = time.perf_counter()
    rows = predict_shard(table, w, batch_rows, 0, 1, dest)
    return time.perf_counter() - started, rows, None


def count_predictions(dest: str) -> list[int]:
    """Rows per predicted class in a predictions file (in its own child: reading the file back
    in the measured one would add to its peak RSS)."""
    import numpy as np
    import pyarrow.parquet as pq

    predicted = pq.read_table(dest, columns=["predicted"]).column(0).to_numpy()
    return np.bincount(predicted, minlength=10).tolist()


def run_reference(table: str, weights: str, batch_rows: int) -> tuple[float, int, np.ndarray]:
    """Minimal: read the whole table, column-fill + transpose, the book forward pass in batches."""
    import numpy as np
    import pyarrow.parquet as pq

    from mnist_pipeline.weights import load_weights

    w = load_weights(weights)
    started = time.perf_counter()
    data = pq.read_table(table)
    n = data.num_rows
    pixels = np.empty((784, n), dtype=np.uint8)
    for i in range(784):
        pixels[i] = data.column(i).to_numpy()
    x = pixels.T
    predicted = np.empty(n, dtype=np.uint8)
    with np.errstate(over="ignore"):  # exp(-a) overflowing to inf gives sigmoid 0, as it should
        for lo in range(0, n, batch_rows):
            a = x[lo : lo + batch_rows].astype(np.float32) / np.float32(255)
            a = 1 / (1 + np.exp(-(a @ w["W1"] + w["b1"])))
            a = 1 / (1 + np.exp(-(a @ w["W2"] + w["b2"])))
            a = a @ w["W3"] + w["b3"]
            e = np.exp(a - a.max(axis=1, keepdims=True))
            predicted[lo : lo + batch_rows] = (e / e.sum(axis=1, keepdims=True)).argmax(axis=1)
    return time.perf_counter() - started, n, predicted


def run_child(impl: str, table: str, weights: str, batch_rows: str, dest: str) -> dict:
    """One measured run ("ours", "ref", or "idle": imports only) as a JSON-able result."""
    import numpy as np

    # pyarrow imports these on first use (any numpy conversion: pandas; read_table: its dataset
    # module), ~0.5 s together: start-up cost, paid here so that the timers see throughput only.
    import pandas  # noqa: F401
    import pyarrow.dataset  # noqa: F401

    if impl == "ours":
        seconds, rows, predicted = run_ours(table, weights, int(batch_rows), dest)
    elif impl == "ref":
        seconds, rows, predicted = run_reference(table, weights, int(batch_rows))
    else:
        import mnist_pipeline.inference  # noqa: F401

        seconds, rows, predicted = 0.0, 0, None
    counts = None if predicted is None else np.bincount(predicted, minlength=10).tolist()
    return {"seconds": seconds, "rows": rows, "counts": counts}


# --- the parent ----------------------------------------------------------------------------------


def spawn(args: list[str], env: dict[str, str]) -> tuple[dict, float, float]:
    """Run this script with `args` in a fresh interpreter: (its JSON, wall s, its peak RSS MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this child alone
    wall = time.perf_counter() - started
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"child {' '.join(args)} exited with status {proc.returncode}")
    return json.loads(out), wall, usage.ru_maxrss / 1024  # KiB on Linux


def measure(
    impl: str, table: str, weights: str, batch: int, dest: Path, env: dict, check: bool = False
) -> Run:
    """One run; with `check`, also the class counts of what ours wrote (read in another child)."""
    result, wall, peak_mb = spawn(["--child", impl, table, weights, str(batch), str(dest)], env)
    counts = result["counts"]
    if impl == "ours" and check:
        counts, _, _ = spawn(["--counts", str(dest)], env)
    dest.unlink(missing_ok=True)
    return Run(result["seconds"], wall, peak_mb, result["rows"], tuple(counts or ()))


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.inside_s for r in runs),
        statistics.median(r.outside_s for r in runs),
        statistics.median(r.peak_mb for r in runs),
        runs[0].rows,
        runs[0].counts,
    )


def verdict(passed: bool, text: str) -> str:
    return f"{'PASS' if passed else 'FAIL'} {text}"


def benchmark(args: argparse.Namespace, workdir: Path) -> bool:
    """Build the inputs, measure every case, print the table and the verdicts; True if all pass."""
    env = dict(os.environ)
    if args.blas_threads:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(args.blas_threads)
    inputs, _, _ = spawn(["--build", str(workdir), str(args.mnist), str(args.rows)], env)
    tables, weights = inputs["tables"], inputs["weights"]
    if "test 10k" not in tables:
        print(f"skip: test 10k: {args.mnist} lacks {' / '.join(TEST_ARCHIVES)} (see --mnist)")
    dest = workdir / "predictions.parquet"
    idle = median_run([measure("idle", weights, weights, 1, dest, env) for _ in range(3)])
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    threads = ", ".join(f"{k}={env[k]}" for k in names if k in env) or "no thread variables set"
    print(
        f"python {sys.version.split()[0]}, {inputs['versions']}; {os.cpu_count()} CPUs, {threads}"
    )
    code = ", ".join(f"{name} {code_hash(name)}" for name in ("inference.py", "tables.py"))
    print(f"measured code: {code}, network.py {code_hash('network.py')}")
    print(f"start-up alone (imports, no work): {idle.peak_mb:.0f} MB RSS, {idle.outside_s:.2f} s")
    print(
        f"{'case':<15}{'batch':>6}{'ours rows/s':>13}{'ref rows/s':>12}{'slowdown':>10}"
        f"{'RSS MB ours/ref':>17}{'wall s ours/ref':>17}  same counts"
    )
    verdicts = []
    for case, table in tables.items():
        repeats = args.repeats if case == "test 10k" else args.repeats_large
        for batch in args.batches:
            runs: dict[str, list[Run]] = {"ours": [], "ref": []}
            for repeat in range(repeats):  # interleaved, so drift hits both alike
                for impl, done in runs.items():
                    done.append(measure(impl, table, weights, batch, dest, env, repeat == 0))
            ours, ref = median_run(runs["ours"]), median_run(runs["ref"])
            slowdown = ours.inside_s / ref.inside_s
            print(
                f"{case:<15}{batch:>6}{ours.rows / ours.inside_s:>13,.0f}"
                f"{ref.rows / ref.inside_s:>12,.0f}{slowdown:>10.2f}"
                f"{f'{ours.peak_mb:.0f} / {ref.peak_mb:.0f}':>17}"
                f"{f'{ours.outside_s:.2f} / {ref.outside_s:.2f}':>17}  "
                f"{'yes' if ours.counts == ref.counts else f'NO {ours.counts} {ref.counts}'}"
            )
            text = f"{case}, batch {batch}: ours takes {slowdown:.2f}x the reference's time"
            verdicts.append(verdict(slowdown <= MAX_SLOWDOWN, f"{text} (bar {MAX_SLOWDOWN}x)"))
            if case != "test 10k" and batch == RSS_BAR_BATCH:
                text = f"{case}, batch {batch}: ours peaks at {ours.peak_mb:.0f} MB RSS"
                verdicts.append(verdict(ours.peak_mb < MAX_RSS_MB, f"{text} (bar {MAX_RSS_MB} MB)"))
    print(f"medians of {args.repeats} runs (test 10k) and {args.repeats_large} (large table)")
    print("\n".join(verdicts))
    return all(v.startswith("PASS") for v in verdicts)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(run_child(*argv[1:])))
        return 0
    if argv[:1] == ["--counts"]:
        print(json.dumps(count_predictions(argv[1])))
        return 0
    if argv[:1] == ["--build"]:
        print(json.dumps(build_inputs(Path(argv[1]), Path(argv[2]), int(argv[3]))))
        return 0
    sys.stdout.reconfigure(line_buffering=True)  # keep order with the children's stderr in logs
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="cache folder for the tables (default: temp)")
    parser.add_argument("--mnist", type=Path, default=MNIST, help="folder with the t10k archives")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large table")
    parser.add_argument("--batches", type=int, nargs="+", default=[1000, 100])
    parser.add_argument("--repeats", type=int, default=5, help="runs per 10k measurement")
    parser.add_argument("--repeats-large", type=int, default=3, help="runs per large measurement")
    parser.add_argument(
        "--blas-threads",
        type=int,
        help="set OPENBLAS/OMP_NUM_THREADS in the children (default: as is)",
    )
    args = parser.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return 0 if benchmark(args, args.workdir.resolve()) else 1
    with tempfile.TemporaryDirectory(prefix="bench_predict.") as workdir:
        return 0 if benchmark(args, Path(workdir)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
