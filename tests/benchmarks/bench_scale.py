"""The book's scripts and this pipeline, cold, side by side: a million rows and MNIST's own size.

    .venv/bin/python tests/benchmarks/bench_scale.py [--repeats 3] [--cases mnist 1.02M]
    .venv/bin/python tests/benchmarks/bench_scale.py --growth \
        [--png workflow/report/scale-growth.png]

Cases: `mnist`, the real archives of ../shared/mnist; `1.02M`, a test split of the real training
images tiled 17 times (1,020,000 rows, gzip -1, a 187 MB .gz) beside the real training split.
Each is served from a loopback mirror (a child process) and run, in turn, by:

- the book: a faithful re-implementation, written out below, of its dataset/mnist.py (download
  the four archives, gzip -> np.frombuffer, pickle them to mnist.pkl, load that pickle, /255 as
  float32) and of ch03's neuralnet_mnist_batch.py (batches of 100, sigmoid, sigmoid, softmax),
  with the book's weights (../shared/book/sample_weight.pkl);
- the pipeline: cold `snakemake --cores 4` in a fresh copy of the project against the same
  mirror, with the same weights given as model.weights.

Wall times are medians of the repeats (reference and pipeline alternate, so load changes hit both
alike, and neither runs right after itself: on a virtual machine, a program that follows itself
finds the memory it has just freed still at hand, which a user's single run does not). Peak RSS of
the largest process comes from os.wait4 on the run (the maximum over it and all its descendants);
per job, /proc/PID/status VmHWM is sampled every 50 ms (during the book's runs too, which have no
jobs, so that both bear the sampling's cost) and the job's seconds come from its Snakemake benchmark
file. Each run's CPU time, user and system, also comes from os.wait4: on a virtual machine the
book's system time, the kernel zeroing its gigabytes of fresh pages, varies from run to run far more
than anything else. Run it with the pipeline's own environment (README's first set-up command): with
the test tools installed as well, Snakemake takes longer to start jobs. The parent imports the
standard library only and serves nothing itself: a child started by vfork inherits its parent's peak
RSS as its own floor.

`--growth` runs the pipeline alone at 10,000, 100,000 and 1,000,000 rows and prints, per stage,
seconds and peak MB; `--png` draws them. Archives are cached in --workdir (default: a temporary
folder). Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import distributions
from pathlib import Path

HERE = Path(__file__).resolve()
TESTS = HERE.parents[1]
REPO = HERE.parents[2]
SHARED = REPO.parent / "shared"
SHARED_MNIST = SHARED / "mnist"  # as tests/project.py finds it
BOOK_WEIGHTS = SHARED / "book" / "sample_weight.pkl"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
ARCHIVES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
BIG_TILES = 17  # the 60,000 training images, 17 times: 1,020,000 rows
CASES = {"mnist": 0, "1.02M": BIG_TILES * 60_000}  # test rows (0: the real test split)
GROWTH_ROWS = (10_000, 100_000, 1_000_000)
RATIO_GOAL = 0.6
RSS_GOAL_MB = 500
MNIST_GOAL_S = 4.0
POLL_S = 0.05
STAGES = (
    "download_archive",
    "convert_to_parquet",
    "predict",
    "gather_predictions",
    "evaluate_metrics",
    "evaluate_pictures",
    "tabulate_perceptron_gates",
)


# --- children -------------------------------------------------------------------------------


def book_run(dataset_dir: str, url_base: str, weights: str) -> dict:
    """The book's dataset/mnist.py and ch03/neuralnet_mnist_batch.py, cold (no mnist.pkl yet)."""
    import gzip
    import pickle
    import urllib.request

    import numpy as np

    key_file = {
        "train_img": ARCHIVES["train_images"],
        "train_label": ARCHIVES["train_labels"],
        "test_img": ARCHIVES["test_images"],
        "test_label": ARCHIVES["test_labels"],
    }
    save_file = dataset_dir + "/mnist.pkl"
    img_size = 784
    # The book's urlopen, without proxies: only loopback traffic here.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _download(file_name):
        file_path = dataset_dir + "/" + file_name
        if os.path.exists(file_path):
            return
        headers = {"User-Agent": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:47.0) Gecko/20100101"}
        request = urllib.request.Request(url_base + file_name, headers=headers)
        response = opener.open(request).read()
        with open(file_path, mode="wb") as f:
            f.write(response)

    def download_mnist():
        for v in key_file.values():
            _download(v)

    def _load_label(file_name):
        with gzip.open(dataset_dir + "/" + file_name, "rb") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        return labels

    def _load_img(file_name):
        with gzip.open(dataset_dir + "/" + file_name, "rb") as f:
            data = np.frombuffer(f.read(), np.uint8, offset=16)
        return data.reshape(-1, img_size)

    def _convert_numpy():
        return {
            "train_img": _load_img(key_file["train_img"]),
            "train_label": _load_label(key_file["train_label"]),
            "test_img": _load_img(key_file["test_img"]),
            "test_label": _load_label(key_file["test_label"]),
        }

    def init_mnist():
        download_mnist()
        dataset = _convert_numpy()
        with open(save_file, "wb") as f:
            pickle.dump(dataset, f, -1)

    def load_mnist(normalize=True):
        if not os.path.exists(save_file):
            init_mnist()
        with open(save_file, "rb") as f:
            dataset = pickle.load(f)
        if normalize:
            for key in ("train_img", "test_img"):
                dataset[key] = dataset[key].astype(np.float32)
                dataset[key] /= 255.0
        return (dataset["train_img"], dataset["train_label"]), (
            dataset["test_img"],
            dataset["test_label"],
        )

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def softmax(x):
        x = x - np.max(x, axis=-1, keepdims=True)
        return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)

    def predict(network, x):
        w1, w2, w3 = network["W1"], network["W2"], network["W3"]
        b1, b2, b3 = network["b1"], network["b2"], network["b3"]
        z1 = sigmoid(np.dot(x, w1) + b1)
        z2 = sigmoid(np.dot(z1, w2) + b2)
        return softmax(np.dot(z2, w3) + b3)

    (_, _), (x, t) = load_mnist(normalize=True)
    with open(weights, "rb") as f:
        network = pickle.load(f)
    batch_size = 100
    accuracy_cnt = 0
    with np.errstate(over="ignore"):  # the book's sigmoid overflows exp for large -x: 1/inf = 0
        for i in range(0, len(x), batch_size):
            y_batch = predict(network, x[i : i + batch_size])
            p = np.argmax(y_batch, axis=1)
            accuracy_cnt += np.sum(p == t[i : i + batch_size])
    return {"correct": int(accuracy_cnt), "total": len(x)}


def build_archives(folder: str, rows: str) -> None:
    """A mirror folder: the real training archives, and a test split of `rows` rows (the real
    training images and labels tiled, gzip -1); `rows` 0: the real test archives."""
    import gzip
    import struct

    import numpy as np

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for key in ("train_images", "train_labels"):
        shutil.copy(SHARED_MNIST / ARCHIVES[key], out / ARCHIVES[key])
    if not int(rows):
        for key in ("test_images", "test_labels"):
            shutil.copy(SHARED_MNIST / ARCHIVES[key], out / ARCHIVES[key])
        return
    rows = int(rows)
    with gzip.open(SHARED_MNIST / ARCHIVES["train_images"]) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)
    with gzip.open(SHARED_MNIST / ARCHIVES["train_labels"]) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    for name, magic, header, data, size in [
        (ARCHIVES["test_images"], 2051, (rows, 28, 28), images, 784),
        (ARCHIVES["test_labels"], 2049, (rows,), labels, 1),
    ]:
        part = out / f"{name}.part"
        with gzip.GzipFile(part, "wb", compresslevel=1, mtime=0) as gz:
            gz.write(struct.pack(f">{1 + len(header)}I", magic, *header))
            for first in range(0, rows, len(labels)):
                gz.write(data[: (rows - first) * size].tobytes())
        part.rename(out / name)


def serve(folder: str) -> None:
    """Serve `folder` from a loopback mirror until stdin closes; print its URL first."""
    sys.path.insert(0, str(TESTS))
    from mirror import LoopbackMirror

    with LoopbackMirror.from_directory(folder) as mirror:
        print(mirror.url, flush=True)
        sys.stdin.read()


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_mb: float  # the largest process of the run (os.wait4)
    correct: int
    total: int
    jobs: dict[str, tuple[float, float]] = field(default_factory=dict)  # stage: (s, peak MB)
    table_mb: float = 0.0  # the pixel table the pipeline made
    user_s: float = 0.0  # CPU time of the run and all its descendants (os.wait4)
    system_s: float = 0.0  # of which the kernel's: page zeroing shows here


def _children(root: int, parents: dict[int, int] | None = None) -> dict[int, str]:
    """Descendants of `root` (pid: command line), from /proc.

    `parents` (pid: parent pid), kept from one call to the next, spares reading again the parent
    of every process already seen: the sampler polls while the runs measured use both cores,
    and reading all of /proc each time cost it a third of a second of CPU per pipeline run.
    """
    parents = {} if parents is None else parents
    alive = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            pid = int(entry.name)
            alive.add(pid)
            if pid in parents:
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    for gone in parents.keys() - alive:
        del parents[gone]
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                try:
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                found[child] = cmdline.decode(errors="replace")
                todo.append(child)
    return found


def _stage(cmdline: str) -> str | None:
    match = re.search(r"\.snakemake/scripts/tmp[^/.]*\.(\w+)\.py", cmdline)
    return match[1] if match else None


class Sampler(threading.Thread):
    """Samples the peak RSS (VmHWM) of each job process under `pid`, by stage, every POLL_S."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peaks: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        stages: dict[int, str | None] = {}
        parents: dict[int, int] = {}
        while not self.stop.wait(POLL_S):
            for pid, cmdline in _children(self.pid, parents).items():
                stage = stages.setdefault(pid, _stage(cmdline))
                if stage is None:
                    continue
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
                if hwm:
                    mb = int(hwm[1]) / 1024
                    self.peaks[stage] = max(self.peaks.get(stage, 0.0), mb)


def run_measured(command: list[str], cwd: Path, sample: bool = False) -> tuple[str, Run]:
    """Run `command`: (its stdout, its Run with wall s and the largest process's peak RSS)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        sampler = Sampler(proc.pid) if sample else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child and its descendants
        seconds = time.perf_counter() - started
        if sampler:
            sampler.stop.set()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            sys.exit(f"{' '.join(command)} failed in {cwd}:\n{err.read()[-4000:]}")
        out = out.read()
    run = Run(seconds, usage.ru_maxrss / 1024, 0, 0, user_s=usage.ru_utime, system_s=usage.ru_stime)
    if sampler:
        run.jobs = {stage: (0.0, mb) for stage, mb in sampler.peaks.items()}
    return out, run


def book(folder: Path, url: str) -> Run:
    command = [sys.executable, str(HERE), "--book", str(folder), url, str(BOOK_WEIGHTS)]
    # Sampled as the pipeline is (it finds no job here), so that both runs bear its cost.
    out, run = run_measured(command, folder, sample=True)
    result = json.loads(out.splitlines()[-1])
    run.correct, run.total = result["correct"], result["total"]
    shutil.rmtree(folder)
    return run


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pins(folder: Path) -> dict[str, dict]:
    return {
        key: {"name": name, "size": (folder / name).stat().st_size, "sha256": sha256(folder / name)}
        for key, name in ARCHIVES.items()
    }


def make_project(folder: Path, url: str, files: dict[str, dict]) -> Path:
    """A fresh copy of what a user clones, with an overlay: the mirror, its pins, the weights.

    As tests/project.py makes one, which this parent does not import: it loads numpy and pyarrow.
    """
    shutil.copy(REPO / "Snakefile", folder)
    for sub in ("workflow", "config"):
        shutil.copytree(REPO / sub, folder / sub, ignore=shutil.ignore_patterns("__pycache__"))
    overlay = {
        "datasets": {"mnist": {"mirrors": [url], "files": files}},
        "model": {"weights": str(BOOK_WEIGHTS)},
    }
    (folder / "overlay.yaml").write_text(json.dumps(overlay))  # JSON is YAML
    return folder


def job_seconds(project: Path) -> dict[str, float]:
    """Stage: the longest of its jobs' seconds, from the Snakemake benchmark files."""
    seconds: dict[str, float] = {}
    for path in (project / "results" / "benchmarks").rglob("*.tsv"):
        stage = path.relative_to(project / "results" / "benchmarks").parts[0]
        stage = stage.removesuffix(".tsv")
        header, values = path.read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t"), strict=True))
        seconds[stage] = max(seconds.get(stage, 0.0), float(row["s"]))
    return seconds


def pipeline(folder: Path, url: str, files: dict[str, dict], keep: bool = False) -> Run:
    project = make_project(folder, url, files)
    command = [SNAKEMAKE, "--cores", "4", "--configfile", "overlay.yaml"]
    _, run = run_measured(command, project, sample=True)
    peaks = {stage: mb for stage, (_, mb) in run.jobs.items()}
    run.jobs = {
        stage: (s, peaks.get(stage, float("nan"))) for stage, s in job_seconds(project).items()
    }
    accuracy = json.loads((project / "results/reports/mnist/test/accuracy.json").read_text())
    run.correct, run.total = accuracy["correct"], accuracy["total"]
    run.table_mb = (project / "results/parquet/mnist/test.parquet").stat().st_size / 1e6
    if not keep:
        shutil.rmtree(project)
    return run


class Mirror:
    """A LoopbackMirror of `folder` in a child process."""

    def __init__(self, folder: Path):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "--serve", str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def environment() -> str:
    """Which environment runs both: the pipeline's own (requirements.lock), or one with more.

    More packages cost the pipeline time: Snakemake imports pandas, numpy and polars, those that
    are installed, in its own process before it starts the first script job.
    """

    def normal(name: str) -> str:  # a distribution's name as PEP 503 compares them
        return re.sub(r"[-_.]+", "-", name).lower()

    lock = (REPO / "requirements.lock").read_text().splitlines()
    pinned = {normal(line.split("==")[0]) for line in lock if "==" in line}
    installed = {normal(d.metadata["Name"]) for d in distributions()}
    extra = installed - pinned - {"mnist-pipeline", "pip", "setuptools"}
    where = f"environment {sys.prefix}: "
    if not extra:
        return where + "the pipeline's own (requirements.lock)"
    more = where + f"requirements.lock and {len(extra)} more packages"
    if "polars" in extra:
        more += "; Snakemake imports polars, installed here, in its own process"
    return more


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


# --- reports ----------------------------------------------------------------------------------


def median_jobs(runs: list[Run]) -> dict[str, tuple[float, float]]:
    stages = [s for s in STAGES if any(s in r.jobs for r in runs)]
    return {
        s: (
            statistics.median(r.jobs[s][0] for r in runs if s in r.jobs),
            max(r.jobs[s][1] for r in runs if s in r.jobs),
        )
        for s in stages
    }


def compare(case: str, folder: Path, repeats: int, workdir: Path) -> list[str]:
    """Book and pipeline in turn on `folder`'s archives; print the table, return the verdicts."""
    files = pins(folder)
    runs: dict[str, list[Run]] = {"book": [], "pipeline": []}
    with Mirror(folder) as mirror:
        for repeat in range(repeats):
            for kind in runs:
                before = load()
                target = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
                if kind == "book":
                    run = book(target, mirror.url)
                else:
                    run = pipeline(target, mirror.url, files)
                runs[kind].append(run)
                print(
                    f"  {case} {kind:8} run {repeat + 1}: {run.seconds:6.2f} s "
                    f"(CPU {run.user_s:5.2f} s user, {run.system_s:5.2f} s system), "
                    f"peak {run.peak_mb:6.0f} MB, {run.correct}/{run.total} correct "
                    f"({before}; after: {load()})",
                    flush=True,
                )
    med = {k: statistics.median(r.seconds for r in v) for k, v in runs.items()}
    peak = {k: max(r.peak_mb for r in v) for k, v in runs.items()}
    ratio = med["pipeline"] / med["book"]
    total = runs["book"][0].total
    print(f"\n{case}: {total:,} test rows, medians of {repeats} cold runs, alternating")
    print(f"{'':10} {'wall s':>8} {'runs s':>24} {'largest process MB':>19} {'correct':>9}")
    for kind, done in runs.items():
        listed = ", ".join(f"{r.seconds:.2f}" for r in done)
        print(f"{kind:10} {med[kind]:8.2f} {listed:>24} {peak[kind]:19.0f} {done[0].correct:>9}")
    print(
        f"pipeline / book: {ratio:.2f} of the wall time, {peak['pipeline'] / peak['book']:.2f} "
        "of the peak RSS"
    )
    for kind, done in runs.items():
        user = statistics.median(r.user_s for r in done)
        system = [f"{r.system_s:.2f}" for r in done]
        print(f"{kind} CPU: {user:.2f} s user (median), system {', '.join(system)} s")
    gz_mb = (folder / ARCHIVES["test_images"]).stat().st_size / 1e6
    print(f"test images: {gz_mb:.1f} MB as .gz, {runs['pipeline'][0].table_mb:.1f} MB as Parquet")
    print(f"{'job':28} {'median s':>9} {'peak MB':>8}")
    for stage, (s, mb) in median_jobs(runs["pipeline"]).items():
        print(f"{stage:28} {s:9.2f} {mb:8.0f}")
    verdicts = []
    if runs["book"][0].correct != runs["pipeline"][0].correct:
        verdicts.append(
            f"FAIL {case}: the pipeline finds {runs['pipeline'][0].correct} correct, the book "
            f"{runs['book'][0].correct}"
        )
    if case == "mnist":
        ok = med["pipeline"] <= MNIST_GOAL_S
        verdicts.append(
            f"{'PASS' if ok else 'FAIL'} {case}: pipeline {med['pipeline']:.2f} s "
            f"(goal {MNIST_GOAL_S} s; book {med['book']:.2f} s)"
        )
    else:
        ok = ratio <= RATIO_GOAL
        verdicts.append(
            f"{'PASS' if ok else 'FAIL'} {case}: pipeline / book {ratio:.2f} (goal {RATIO_GOAL})"
        )
        ok = peak["pipeline"] <= RSS_GOAL_MB
        verdicts.append(
            f"{'PASS' if ok else 'FAIL'} {case}: largest process {peak['pipeline']:.0f} MB "
            f"(goal {RSS_GOAL_MB} MB)"
        )
    return verdicts


def growth(sizes: list[int], repeats: int, workdir: Path, png: Path | None) -> None:
    """The pipeline alone at each size: seconds and peak MB per stage."""
    table: dict[int, tuple[float, float, dict[str, tuple[float, float]]]] = {}
    for rows in sizes:
        folder = archives(workdir, rows)
        files = pins(folder)
        runs = []
        with Mirror(folder) as mirror:
            for repeat in range(repeats):
                before = load()
                target = Path(tempfile.mkdtemp(prefix=f"growth-{rows}-", dir=workdir))
                run = pipeline(target, mirror.url, files)
                runs.append(run)
                print(
                    f"  {rows:>9,} rows run {repeat + 1}: {run.seconds:6.2f} s, peak "
                    f"{run.peak_mb:5.0f} MB ({before}; after: {load()})",
                    flush=True,
                )
        wall = statistics.median(r.seconds for r in runs)
        table[rows] = (wall, max(r.peak_mb for r in runs), median_jobs(runs))
    stages = [s for s in STAGES if any(s in jobs for _, _, jobs in table.values())]
    print(f"\ngrowth: cold `snakemake --cores 4`, given weights, medians of {repeats}: s / peak MB")
    print(f"{'rows':28}" + "".join(f"{rows:>16,}" for rows in sizes))
    for stage in stages:
        cells = []
        for rows in sizes:
            s, mb = table[rows][2].get(stage, (float("nan"), float("nan")))
            cells.append(f"{s:7.2f} / {mb:4.0f}")
        print(f"{stage:28}" + "".join(f"{c:>16}" for c in cells))
    print(
        f"{'whole run (largest process)':28}"
        + "".join(f"{f'{table[r][0]:7.2f} / {table[r][1]:4.0f}':>16}" for r in sizes)
    )
    if png:
        draw(table, stages, png)


def draw(table, stages: list[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    sizes = sorted(table)
    fig = Figure(figsize=(8, 3.2), dpi=80, layout="constrained")
    seconds, memory = fig.subplots(1, 2)
    for stage in stages:
        s = [table[n][2].get(stage, (float("nan"),) * 2) for n in sizes]
        seconds.plot(sizes, [x for x, _ in s], marker="o", label=stage)
        memory.plot(sizes, [m for _, m in s], marker="o", label=stage)
    seconds.plot(sizes, [table[n][0] for n in sizes], "k--", marker="s", label="whole run")
    for ax, title in ((seconds, "seconds"), (memory, "peak RSS, MB")):
        ax.set_xscale("log")
        ax.set_xlabel("rows in the test split")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    seconds.set_yscale("log")
    memory.set_ylim(0, max(RSS_GOAL_MB, memory.get_ylim()[1]))
    memory.legend(fontsize=7)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    print(f"wrote {png}")


def archives(workdir: Path, rows: int) -> Path:
    """The mirror folder for a test split of `rows` rows (0: the real one), built once."""
    folder = workdir / f"archives-{rows}"
    if not (folder / ARCHIVES["test_labels"]).exists():
        subprocess.run([sys.executable, str(HERE), "--build", str(folder), str(rows)], check=True)
    return folder


def main() -> int:
    if sys.argv[1:2] == ["--book"]:
        print(json.dumps(book_run(*sys.argv[2:5])))
        return 0
    if sys.argv[1:2] == ["--build"]:
        build_archives(*sys.argv[2:4])
        return 0
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--growth", action="store_true", help="the growth table instead")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(GROWTH_ROWS))
    parser.add_argument("--png", type=Path, help="draw the growth table into this PNG")
    parser.add_argument("--workdir", type=Path, help="keep the archives here (default: temporary)")
    args = parser.parse_args()
    for need, what in (
        (SHARED_MNIST / ARCHIVES["train_images"], "the real MNIST archives"),
        (BOOK_WEIGHTS, "the book's weights"),
    ):
        if not need.exists():
            sys.exit(f"bench_scale: skipped: {need} is absent; this benchmark needs {what}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_scale."))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {load()}", flush=True)
    print(environment(), flush=True)
    try:
        if args.growth:
            growth(args.sizes, args.repeats, workdir, args.png)
            return 0
        verdicts = []
        for case in args.cases:
            verdicts += compare(case, archives(workdir, CASES[case]), args.repeats, workdir)
        print("\n" + "\n".join(verdicts))
        return 0 if all(v.startswith("PASS") for v in verdicts) else 1
    finally:
        if not args.workdir:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    sys.exit(main())
