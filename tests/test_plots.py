"""Pictures: valid PNGs of sensible size, the right captions, nothing left behind on failure."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import LogNorm, to_rgba
from matplotlib.figure import Figure
from PIL import Image

from mnist_pipeline import plots
from mnist_pipeline.plots import PlotError

from project import SHARED_MNIST

FASHION = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
KMNIST = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


@pytest.fixture(autouse=True)
def no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG that PIL and matplotlib both read back."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(path) as img:
        size = img.size
    assert matplotlib.image.imread(path).shape[:2] == (size[1], size[0])
    return size


def assert_sensible(path: Path) -> None:
    width, height = png_size(path)
    assert 600 <= width <= 1600, width
    assert 250 <= height <= 1600, height


def assert_only(folder: Path, *names: str) -> None:
    """The folder holds exactly these files: no temporary leftovers."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 784), dtype=np.uint8)


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


# --- confusion matrix -------------------------------------------------------------------------


def test_confusion_matrix_png(tmp_path):
    cm = np.random.default_rng(1).integers(0, 50, (10, 10)) + np.diag(np.full(10, 900))
    out = tmp_path / "cm.png"
    plots.plot_confusion_matrix(cm, FASHION, out, "fashion-mnist test")
    assert_sensible(out)
    assert_only(tmp_path, "cm.png")


def test_confusion_matrix_cells_and_names():
    cm = np.array([[90, 3, 0], [10, 50, 1], [0, 2, 1200]])
    fig = plots.confusion_matrix_figure(cm, ["o", "ki", "su"], "kmnist")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["o", "ki", "su"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["o", "ki", "su"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    # one label per cell, row by row, with thousands separators
    assert texts(ax) == ["90", "3", "0", "10", "50", "1", "0", "2", "1,200"]
    # the darkest cell (1200, above half the maximum) has white text; the others black
    colours = [to_rgba(t.get_color()) for t in ax.texts]
    assert colours[-1] == to_rgba("white")
    assert colours[:-1] == [to_rgba("black")] * 8


@pytest.mark.parametrize("n", [3, plots.MANY_CLASSES + 1], ids=["few", "many"])
def test_each_count_is_drawn_in_the_row_of_its_true_class_and_column_of_its_predicted(n):
    """cm[i, j] = 10 i + j + 1 is not symmetric: a transposed image, count or tick shows."""
    cm = 10 * np.arange(n)[:, None] + np.arange(n) + 1
    names = [f"c{i}" for i in range(n)]
    ax = plots.confusion_matrix_figure(cm, names, "t").axes[0]
    np.testing.assert_array_equal(np.ma.getdata(ax.images[0].get_array()), cm)
    written = {tuple(t.get_position()): t.get_text() for t in ax.texts}
    assert written == {(j, i): str(cm[i, j]) for i in range(n) for j in range(n)}
    rows = [t.get_text() for t in ax.get_yticklabels()]
    columns = [t.get_text() for t in ax.get_xticklabels()][:n]
    assert list(zip(ax.get_yticks(), rows, strict=True)) == list(enumerate(names))
    assert list(zip(ax.get_xticks(), columns, strict=True)) == list(enumerate(names))
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("true", "predicted")


BYCLASS = (
    [str(d) for d in range(10)] + [chr(c) for c in range(65, 91)] + [chr(c) for c in range(97, 123)]
)


@pytest.mark.parametrize("names", [BYCLASS, BYCLASS[:47]], ids=["62 classes", "47 classes"])
def test_a_confusion_matrix_of_many_classes_stays_readable(tmp_path, names):
    n = len(names)
    cm = np.diag(np.arange(1000, 1000 + 50 * n, 50))
    cm[3, 5], cm[5, 3], cm[n - 1, 0] = 120, 1, 35_000
    fig = plots.confusion_matrix_figure(cm, names, "emnist test")
    ax = fig.axes[0]
    fig.canvas.draw()
    cell = ax.get_window_extent().height / n  # pixels
    assert cell >= 24
    # Only the non-empty cells are written, compactly, on a log colour scale.
    assert len(ax.texts) == np.count_nonzero(cm) == n + 3
    written = dict(zip(zip(*np.nonzero(cm), strict=True), texts(ax), strict=True))
    assert (written[(0, 0)], written[(3, 5)], written[(5, 3)]) == ("1.0k", "120", "1")
    assert written[(n - 1, 0)] == "35k"
    assert all(t.get_fontsize() >= 6 for t in ax.texts)
    assert max(t.get_window_extent().width for t in ax.texts) < cell  # each fits its cell
    assert isinstance(ax.images[0].norm, LogNorm)
    assert [t.get_text() for t in ax.get_xticklabels()] == names + names  # below and on top
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())  # one or two characters
    out = tmp_path / "cm.png"
    plots.plot_confusion_matrix(cm, names, out, "emnist test")
    width, height = png_size(out)
    assert max(width, height) <= 2400


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0"), (7, "7"), (999, "999"), (1000, "1.0k"), (1234, "1.2k"), (9949, "9.9k"),
     (9950, "10k"), (35_000, "35k"), (999_499, "999k"), (999_500, "1.0M"), (999_999, "1.0M"),
     (1_500_000, "1.5M"), (12_000_000, "12M")],
)  # fmt: skip
def test_counts_are_written_in_at_most_four_characters(count, shown):
    assert plots._compact(count) == shown


def test_confusion_matrix_all_zero_draws():
    fig = plots.confusion_matrix_figure(np.zeros((2, 2), dtype=int), ["a", "b"], "empty")
    assert texts(fig.axes[0]) == ["0", "0", "0", "0"]


@pytest.mark.parametrize(
    ("cm", "names", "message"),
    [
        (
            np.eye(3, dtype=int),
            ["a", "b"],
            r"shape \(3, 3\) but 2 class names .* expected \(2, 2\)",
        ),
        (np.eye(2), ["a", "b"], r"integer counts, got dtype float64"),
        (np.zeros((0, 0), dtype=int), [], r"class_names is empty"),
    ],
)
def test_confusion_matrix_bad_input_writes_nothing(tmp_path, cm, names, message):
    with pytest.raises(PlotError, match=message):
        plots.plot_confusion_matrix(cm, names, tmp_path / "cm.png", "t")
    assert_only(tmp_path)


# --- samples ----------------------------------------------------------------------------------


def test_samples_png(tmp_path):
    x = images(100)
    labels = np.arange(100) % 10
    out = tmp_path / "samples.png"
    plots.plot_samples(x, labels, FASHION, out, "fashion-mnist train")
    assert_sensible(out)
    assert_only(tmp_path, "samples.png")


def test_samples_captions_and_large_digit():
    x = images(40)
    labels = (np.arange(40) * 3) % 10
    fig = plots.samples_figure(x, labels, KMNIST, "kmnist", n=12)
    grid_ax, big_ax, colorbar_ax = fig.axes
    assert texts(grid_ax) == [KMNIST[v] for v in labels[:12]]
    assert big_ax.get_title() == f"image 0: {KMNIST[labels[0]]}"
    np.testing.assert_array_equal(big_ax.images[0].get_array(), x[0].reshape(28, 28))
    assert colorbar_ax.get_ylabel() == "pixel value"
    # the grid shows image 0 in its top-left cell and image 1 in the cell to its right
    sheet = grid_ax.images[0].get_array()
    cell = 28 + plots.GAP
    assert contains(sheet[:cell, :cell], x[0].reshape(28, 28))
    assert contains(sheet[:cell, cell : 2 * cell], x[1].reshape(28, 28))


def contains(area: np.ndarray, tile: np.ndarray) -> bool:
    """Whether `tile` appears as a block somewhere in `area`."""
    h, w = tile.shape
    return any(
        np.array_equal(area[y : y + h, x : x + w], tile)
        for y in range(area.shape[0] - h + 1)
        for x in range(area.shape[1] - w + 1)
    )


def test_samples_fewer_images_than_n():
    fig = plots.samples_figure(images(3), [1, 2, 3], KMNIST, "three", n=25)
    assert texts(fig.axes[0]) == ["ki", "su", "tsu"]
    assert fig.axes[0].get_title() == "first 3 images"


def test_samples_accept_28x28_and_float_pixels():
    x = images(4).reshape(4, 28, 28) / 255.0
    fig = plots.samples_figure(x, [0, 1, 2, 3], KMNIST, "floats", n=4)
    assert texts(fig.axes[0]) == ["o", "ki", "su", "tsu"]


@pytest.mark.parametrize(
    ("x", "labels", "n", "message"),
    [
        (images(3)[:, :700], [0, 1, 2], 25, r"700 pixels per row, which is not a square"),
        (np.zeros((3, 28, 27), np.uint8), [0, 1, 2], 25, r"got shape \(3, 28, 27\)"),
        (images(3), [0, 1], 25, r"labels must be 3 labels \(one per image\), got shape \(2,\)"),
        (images(3), [0, 1, 10], 25, r"labels holds \[10\] outside 0\.\.9"),
        (images(3), [0.0, 1.0, 2.0], 25, r"labels must hold integer class indices"),
        (images(3), [0, 1, 2], 0, r"n must be at least 1, got 0"),
        (images(0), [], 25, r"no images to draw"),
    ],
)
def test_samples_bad_input_writes_nothing(tmp_path, x, labels, n, message):
    with pytest.raises(PlotError, match=message):
        plots.plot_samples(x, labels, KMNIST, tmp_path / "samples.png", "t", n=n)
    assert_only(tmp_path)


# --- misclassified ----------------------------------------------------------------------------


def test_misclassified_png(tmp_path):
    rng = np.random.default_rng(3)
    t = rng.integers(0, 10, 200)
    p = np.where(rng.random(200) < 0.3, rng.integers(0, 10, 200), t)
    out = tmp_path / "wrong.png"
    plots.plot_misclassified(images(200), t, p, rng.random(200), FASHION, out, "wrong")
    assert_sensible(out)
    assert_only(tmp_path, "wrong.png")


def test_misclassified_captions_skip_correct_rows():
    t = [0, 1, 2, 3, 4, 9]
    p = [0, 7, 2, 8, 5, 0]  # rows 1, 3, 4, 5 are wrong
    conf = [0.9, 0.5, 0.8, 0.994, 0.25, 1.0]
    fig = plots.misclassified_figure(images(6), t, p, conf, FASHION, "fashion", n=3)
    assert texts(fig.axes[0]) == [
        "Trouser → Sneaker (0.50)",
        "Dress → Bag (0.99)",
        "Coat → Sandal (0.25)",
    ]
    assert fig.get_suptitle() == "fashion"


def test_misclassified_none_says_so(tmp_path):
    out = tmp_path / "wrong.png"
    plots.plot_misclassified(images(5), [1] * 5, [1] * 5, [0.7] * 5, KMNIST, out, "all right")
    width, height = png_size(out)
    assert width >= 600 and height >= 250
    fig = plots.misclassified_figure(images(0), [], [], [], KMNIST, "none given")
    assert fig.get_suptitle() == "none given"
    assert "no misclassified images" in [t.get_text() for t in fig.texts]
    assert fig.axes == []


@pytest.mark.parametrize(
    ("p", "conf", "message"),
    [
        ([1, 1], [0.5, 0.5], r"predicted must be 3 labels"),
        ([1, 1, 12], [0.5, 0.5, 0.5], r"predicted holds \[12\] outside 0\.\.9"),
        ([1, 1, 1], [0.5, 0.5], r"confidence must be 3 values"),
        ([1, 1, 1], [0.5, 1.5, np.nan], r"confidence must lie in 0\.\.1 .* found \[1\.5, nan\]"),
    ],
)
def test_misclassified_bad_input_writes_nothing(tmp_path, p, conf, message):
    with pytest.raises(PlotError, match=message):
        plots.plot_misclassified(images(3), [0, 0, 0], p, conf, KMNIST, tmp_path / "w.png", "t")
    assert_only(tmp_path)


# --- text -------------------------------------------------------------------------------------

# Math text would typeset these (and refuse the unknown command); they must show as typed.
MATHY = [r"$\nosuchcommand$", "$x^2$", "a_b", r"\alpha", "$", "5$", "6", "7", "8", "9"]


def test_names_and_titles_are_drawn_as_plain_text(tmp_path):
    x = images(20)
    labels = np.arange(20) % 10
    title = r"$\frac{1}{$ title"
    plots.plot_samples(x, labels, MATHY, tmp_path / "s.png", title)
    plots.plot_confusion_matrix(np.eye(10, dtype=int), MATHY, tmp_path / "c.png", title)
    wrong = (labels + 1) % 10
    plots.plot_misclassified(x, labels, wrong, [0.5] * 20, MATHY, tmp_path / "m.png", title)
    assert_only(tmp_path, "s.png", "c.png", "m.png")

    fig = plots.samples_figure(x, labels, MATHY, title, n=10)
    grid_ax, big_ax, _ = fig.axes
    assert texts(grid_ax) == MATHY
    assert big_ax.get_title() == f"image 0: {MATHY[0]}"
    drawn = [*grid_ax.texts, big_ax.title, fig._suptitle]
    fig = plots.confusion_matrix_figure(np.eye(10, dtype=int), MATHY, title)
    ax = fig.axes[0]
    drawn += [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title]
    fig = plots.misclassified_figure(x, labels, wrong, [0.5] * 20, MATHY, title)
    drawn += [*fig.axes[0].texts, fig._suptitle]
    assert all(not t.get_parse_math() for t in drawn)


# --- training curves --------------------------------------------------------------------------

HISTORY = pd.DataFrame(
    {
        "epoch": [1, 2, 3, 4],
        "loss": [2.1, 0.9, 0.5, 0.4],
        "train_accuracy": [0.6, 0.85, 0.9, 0.93],
        "test_accuracy": [0.58, 0.84, 0.88, 0.91],
    }
)


@pytest.mark.parametrize(
    ("cm", "names"),
    [
        (np.full((10, 10), 999_999), FASHION),
        (np.full((10, 10), 12_345_678), FASHION),
        (np.full((20, 20), 999_999), [f"class {i}" for i in range(20)]),
        (np.diag(np.arange(100, 162)), BYCLASS),
    ],
    ids=["10 classes", "10 classes, 12M", "20 classes", "62 classes"],
)
def test_the_counts_left_out_of_the_layout_lie_within_the_axes(cm, names):
    # The layout makes room only for what it is given: the counts, left out, must fit inside
    # the axes at their longest (999,999 written in full; from a million on, 12M).
    fig = plots.confusion_matrix_figure(cm, names, "test")
    fig.canvas.draw()
    ax = fig.axes[0]
    box = ax.get_window_extent()
    cell = box.width / len(names)
    left_out = [text.get_window_extent() for text in ax.texts if not text.get_in_layout()]
    assert len(left_out) == np.count_nonzero(cm)
    assert all(e.width < cell for e in left_out)  # in its cell, not over its neighbours'
    assert all(
        box.x0 <= e.x0 and e.x1 <= box.x1 and box.y0 <= e.y0 and e.y1 <= box.y1 for e in left_out
    )


def test_training_curves_png(tmp_path):
    out = tmp_path / "curves.png"
    plots.plot_training_curves(HISTORY, out)
    assert_sensible(out)
    assert_only(tmp_path, "curves.png")


def test_training_curves_plot_the_columns():
    loss_ax, acc_ax = plots.training_curves_figure(HISTORY).axes
    (loss,) = loss_ax.get_lines()
    assert loss.get_xdata().tolist() == [1, 2, 3, 4]
    assert loss.get_ydata().tolist() == [2.1, 0.9, 0.5, 0.4]
    train, test = acc_ax.get_lines()
    assert (train.get_label(), test.get_label()) == ("train", "test")
    assert train.get_ydata().tolist() == [0.6, 0.85, 0.9, 0.93]
    assert test.get_ydata().tolist() == [0.58, 0.84, 0.88, 0.91]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (HISTORY.drop(columns=["loss", "test_accuracy"]), r"lacks column\(s\) \['loss', 'test_acc"),
        (HISTORY.iloc[:0], r"has no rows"),
    ],
)
def test_training_curves_bad_history_writes_nothing(tmp_path, history, message):
    with pytest.raises(PlotError, match=message):
        plots.plot_training_curves(history, tmp_path / "curves.png")
    assert_only(tmp_path)


# --- writing ----------------------------------------------------------------------------------


def test_failure_while_saving_leaves_nothing(tmp_path, monkeypatch):
    def half_write(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG that stops after its signature
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", half_write)
    with pytest.raises(OSError, match="disk full"):
        plots.plot_training_curves(HISTORY, tmp_path / "curves.png")
    assert_only(tmp_path)


FIGURES = {
    "samples": lambda: plots.samples_figure(images(30), np.arange(30) % 10, FASHION, "samples"),
    "misclassified": lambda: plots.misclassified_figure(
        images(30), np.arange(30) % 10, np.arange(30) % 7, np.full(30, 0.5), FASHION, "wrong"
    ),
    "no mistakes": lambda: plots.misclassified_figure(
        images(3), [1, 2, 3], [1, 2, 3], [0.9] * 3, FASHION, "none wrong"
    ),
    "confusion": lambda: plots.confusion_matrix_figure(
        np.arange(100).reshape(10, 10), FASHION, "confusion"
    ),
    "many classes": lambda: plots.confusion_matrix_figure(
        np.arange(62 * 62).reshape(62, 62) % 50, BYCLASS, "62 classes"
    ),
    "training curves": lambda: plots.training_curves_figure(HISTORY),
}


@pytest.mark.parametrize("make", FIGURES.values(), ids=FIGURES.keys())
def test_saved_pixel_for_pixel_as_savefig_draws_it(tmp_path, make):
    # _save lays the figure out once instead of letting savefig lay it out in a dry run.
    plots._save(make(), tmp_path / "saved.png")
    make().savefig(tmp_path / "savefig.png", format="png", dpi=plots.DPI)
    saved = matplotlib.image.imread(tmp_path / "saved.png")
    reference = matplotlib.image.imread(tmp_path / "savefig.png")
    assert saved.shape == reference.shape
    assert np.array_equal(saved, reference)


def test_replaces_an_existing_file(tmp_path):
    out = tmp_path / "curves.png"
    out.write_bytes(b"stale")
    plots.plot_training_curves(HISTORY, out)
    assert_sensible(out)
    assert_only(tmp_path, "curves.png")


def test_no_pyplot_and_no_display_needed(tmp_path):
    out = tmp_path / "c.png"
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from mnist_pipeline import plots\n"
        f"plots.plot_confusion_matrix(np.eye(2, dtype=int), ['a', 'b'], {str(out)!r}, 't')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert_sensible(out)


# --- real data --------------------------------------------------------------------------------


def test_real_mnist_samples(tmp_path):
    archive = SHARED_MNIST / "t10k-images-idx3-ubyte.gz"
    labels = SHARED_MNIST / "t10k-labels-idx1-ubyte.gz"
    if not (archive.exists() and labels.exists()):
        pytest.skip(f"real MNIST archives not found in {SHARED_MNIST}")
    # IDX: 16-byte header for images, 8 for labels (see the facts README)
    x = np.frombuffer(gzip.decompress(archive.read_bytes()), np.uint8, offset=16).reshape(-1, 784)
    t = np.frombuffer(gzip.decompress(labels.read_bytes()), np.uint8, offset=8)
    names = [str(i) for i in range(10)]
    fig = plots.samples_figure(x, t, names, "mnist test")
    assert texts(fig.axes[0])[:10] == ["7", "2", "1", "0", "4", "1", "4", "9", "5", "9"]
    out = tmp_path / "samples.png"
    plots.plot_samples(x, t, names, out, "mnist test")
    assert_sensible(out)
