"""Time the whole job on the real MNIST served from a loopback mirror, cold (empty results/).

    .venv/bin/python tests/benchmarks/bench_workflow.py [--repeats 3]

Three cases, each `snakemake --cores 4` in a fresh copy of the project: the default config (a
model trained here), the user's weights (the trained weights.npz as model.weights), and a second
run with nothing to do. Prints the median wall time and the largest process's peak RSS (from
/usr/bin/time -v) and checks them against the bars: 90 s, 20 s and 3 s; and the train_model
job's own time (its benchmark file) against 60 s.
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mirror import LoopbackMirror  # noqa: E402
from project import SHARED_MNIST, SNAKEMAKE, make_project, shared_pins, write_overlay  # noqa: E402

BARS = {"trained here": 90.0, "user's weights": 20.0, "nothing to do": 3.0}
TRAIN_BAR = 60.0


def timed_run(project: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `snakemake --cores 4` in `project`."""
    command = ["/usr/bin/time", "-v", SNAKEMAKE, "--cores", "4", "--configfile", "overlay.yaml"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=project, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"snakemake failed in {project}:\n{result.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)[1])
    return seconds, peak_kb / 1024


def job_benchmark(path: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) from a Snakemake `benchmark:` file."""
    header, values = path.read_text().splitlines()[:2]
    row = dict(zip(header.split("\t"), values.split("\t"), strict=True))
    return float(row["s"]), float(row["max_rss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not SHARED_MNIST.exists():
        sys.exit(f"{SHARED_MNIST} is absent: this benchmark needs the real MNIST archives")
    runs: dict[str, list[tuple[float, float]]] = {case: [] for case in BARS}
    training: list[tuple[float, float]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        LoopbackMirror.from_directory(SHARED_MNIST) as mirror,
    ):
        for repeat in range(args.repeats):
            trained = make_project(Path(tmp) / f"trained{repeat}")
            write_overlay(trained, [mirror.url], shared_pins())
            runs["trained here"].append(timed_run(trained))
            training.append(job_benchmark(trained / "results/benchmarks/train_model/mnist.tsv"))
            runs["nothing to do"].append(timed_run(trained))
            given = make_project(Path(tmp) / f"given{repeat}")
            weights = trained / "results/model/mnist/weights.npz"
            write_overlay(given, [mirror.url], shared_pins(), model={"weights": str(weights)})
            runs["user's weights"].append(timed_run(given))
    print(f"{'case':<16} {'median s':>9} {'runs s':>24} {'peak RSS MB':>12} {'bar s':>6}  verdict")
    for case, results in runs.items():
        print_row(case, results, BARS[case])
    print_row("train_model job", training, TRAIN_BAR)


def print_row(case: str, results: list[tuple[float, float]], bar: float) -> None:
    seconds = [s for s, _ in results]
    median = statistics.median(seconds)
    listed = ", ".join(f"{s:.1f}" for s in seconds)
    peak = max(m for _, m in results)
    verdict = "PASS" if median < bar else "FAIL"
    print(f"{case:<16} {median:>9.2f} {listed:>24} {peak:>12.0f} {bar:>6.0f}  {verdict}")


if __name__ == "__main__":
    main()
