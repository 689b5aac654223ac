"""PNG pictures of a dataset and a model's results, drawn with matplotlib's Figure API.

No pyplot: figures are plain `Figure` objects rendered by the Agg canvas on save, so no display and
no global state are involved. Each `*_figure` function builds a Figure (shown inline in a notebook);
each `plot_*` function writes one as PNG, atomically.
"""

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from mnist_pipeline.atomic import atomic_path
from mnist_pipeline.errors import MnistPipelineError

if TYPE_CHECKING:  # the pictures' jobs do not pay pandas' import for a type hint
    import pandas as pd

DPI = 100
GAP = 10  # pixels between grid tiles (in image pixels), room for a caption line
CAPTION = 8  # caption font size (points)
# Class names and titles are drawn as the characters they are: no math text ("$x$") and no TeX,
# whatever the caller's rcParams say.
PLAIN = {"parse_math": False, "usetex": False}
_NO_AUTOMATIC_LAYOUT = {"figure.autolayout": False, "figure.constrained_layout.use": False}
# A count centred in its cell is left out of the layout, which would measure each one only to
# find it inside the axes: the same picture, drawn sooner.
_IN_CELL = {"ha": "center", "va": "center", "in_layout": False}


class PlotError(MnistPipelineError, ValueError):
    """Data that cannot be drawn as asked."""


def _save(fig: Figure, path: str | os.PathLike) -> None:
    """Write `fig` to `path` as PNG, atomically.

    A figure with a layout engine is laid out here, once, and saved without its engine: savefig
    would draw it twice, a dry run that lays it out and then the picture. The PNG is the same,
    pixel for pixel.
    """
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        with matplotlib.rc_context(_NO_AUTOMATIC_LAYOUT):  # so that None removes the engine
            fig.set_layout_engine(None)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def _names(class_names: Sequence[str]) -> list[str]:
    names = [str(name) for name in class_names]
    if not names:
        raise PlotError("class_names is empty: give one name per class")
    return names


def _images(images) -> np.ndarray:
    """(m, side*side) or (m, side, side) pixels as an (m, side, side) array."""
    arr = np.asarray(images)
    if arr.ndim == 2:
        side = int(round(np.sqrt(arr.shape[1])))
        if side * side != arr.shape[1] or side == 0:
            raise PlotError(
                f"images have {arr.shape[1]} pixels per row, which is not a square picture: "
                f"expected (count, 784) as in MNIST"
            )
        arr = arr.reshape(len(arr), side, side)
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[1] != arr.shape[2]:
        raise PlotError(f"images must be (count, 784) or (count, 28, 28), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise PlotError(f"images must hold numeric pixels, got dtype {arr.dtype}")
    return arr


def _class_indices(values, count: int, n_classes: int, what: str) -> np.ndarray:
    """`values` as `count` int64 class indices in 0..n_classes-1; `what` names it in errors."""
    arr = np.asarray(values)
    if arr.shape != (count,):
        raise PlotError(f"{what} must be {count} labels (one per image), got shape {arr.shape}")
    if count and not np.issubdtype(arr.dtype, np.integer):
        raise PlotError(f"{what} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= n_classes)
    if bad.any():
        raise PlotError(
            f"{what} holds {sorted(set(arr[bad].tolist()))[:10]} outside 0..{n_classes - 1}: "
            f"give one class name per label value"
        )
    return arr


def _grid_shape(k: int) -> tuple[int, int]:
    cols = max(1, int(np.ceil(np.sqrt(k))))
    return int(np.ceil(k / cols)), cols


def _montage(tiles: np.ndarray, rows: int, cols: int, cell_w: int) -> np.ndarray:
    """Tiles (k, s, s) row-major on a (rows, cols) grid of cells `cell_w` wide and s + GAP high.

    Each tile sits centred at the top of its cell; the rest of the cell (room for a caption) and
    empty cells are NaN, which imshow leaves transparent.
    """
    k, s, _ = tiles.shape
    cell_h = s + GAP
    padded = np.full((rows * cols, cell_h, cell_w), np.nan, dtype=np.float32)
    left = (cell_w - s) // 2
    padded[:k, GAP // 2 : GAP // 2 + s, left : left + s] = tiles
    # (rows, cols, y, x) -> (rows, y, cols, x): one image with the tiles side by side
    sheet = padded.reshape(rows, cols, cell_h, cell_w).transpose(0, 2, 1, 3)
    return sheet.reshape(rows * cell_h, cols * cell_w)


def _pixel_range(images: np.ndarray) -> tuple[float, float]:
    if images.dtype == np.uint8:
        return 0.0, 255.0
    if images.size == 0:
        return 0.0, 1.0
    return float(np.nanmin(images)), float(np.nanmax(images))


def _draw_grid(
    ax, tiles: np.ndarray, captions: list[str], vrange: tuple[float, float], cell_w: int
) -> None:
    """Tiles on one axes (a single imshow, fast), each with its caption below it."""
    rows, cols = _grid_shape(len(tiles))
    s = tiles.shape[1]
    ax.imshow(
        _montage(tiles, rows, cols, cell_w),
        cmap="gray",
        vmin=vrange[0],
        vmax=vrange[1],
        interpolation="nearest",
    )
    ax.set_axis_off()
    for i, caption in enumerate(captions):
        r, c = divmod(i, cols)
        ax.text(
            c * cell_w + cell_w / 2,
            r * (s + GAP) + GAP // 2 + s + 0.5,
            caption,
            ha="center",
            va="top",
            fontsize=CAPTION,
            **PLAIN,
        )


def _grid_figsize(
    rows: int, cols: int, cell_w_in: float, cell_aspect: float
) -> tuple[float, float]:
    """(width, height) in inches for a grid of cells `cell_w_in` wide, plus titles and margins."""
    return cols * cell_w_in + 0.4, rows * cell_w_in / cell_aspect + 1.0


# Up to this many classes every count is written in its cell. With more (EMNIST's 26 to 62), a
# count no longer fits a cell of a picture that stays on a screen, and a diagonal of thousands
# drowns the few confusions on a linear scale: cells get a fixed size, colours a log scale
# (empty cells stay white), and only non-zero counts are written, compactly (1.2k).
MANY_CLASSES = 20
CELL_INCHES = 0.3  # cell side with many classes: a 62-class picture is about 22 inches (2200 px)


def confusion_matrix_figure(cm, class_names: Sequence[str], title: str) -> Figure:
    """Heatmap of counts (rows = true, columns = predicted) with the count written in each cell
    (in each non-empty cell, on a log colour scale, beyond MANY_CLASSES classes)."""
    cm = np.asarray(cm)
    names = _names(class_names)
    if cm.shape != (len(names), len(names)):
        raise PlotError(
            f"confusion matrix has shape {cm.shape} but {len(names)} class names were given: "
            f"expected ({len(names)}, {len(names)})"
        )
    if not np.issubdtype(cm.dtype, np.integer):
        raise PlotError(f"confusion matrix must hold integer counts, got dtype {cm.dtype}")
    n = len(names)
    many = n > MANY_CLASSES
    size = CELL_INCHES * n + 3 if many else min(14.0, max(6.0, 0.6 * n + 3))
    fig = Figure(figsize=(size + 1, size), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    if many:
        _draw_sparse_counts(fig, ax, cm)
    else:
        _draw_counts(fig, ax, cm)
    # Short names (digits, letters) stand upright; longer ones are slanted so they do not overlap.
    slanted = {"rotation": 45, "ha": "right", "rotation_mode": "anchor"}
    upright = max(len(name) for name in names) <= 2
    ax.set_xticks(range(n), names, **({} if upright else slanted), **PLAIN)
    ax.set_yticks(range(n), names, **PLAIN)
    if many:  # the class names on top too, and faint lines between rows and columns
        ax.tick_params(top=True, labeltop=True, labelsize=8)
        ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="0.85", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, **PLAIN)
    return fig


def _draw_counts(fig: Figure, ax, cm: np.ndarray) -> None:
    """Linear colours, and every count in its cell."""
    image = ax.imshow(cm, cmap="Blues", vmin=0, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="count")
    # White text on cells darker than the colour map's midpoint, black on lighter ones.
    dark = cm > (cm.max() / 2 if cm.size and cm.max() > 0 else np.inf)
    fontsize = max(5, min(10, 120 // max(len(cm), 1)))
    for (i, j), value in np.ndenumerate(cm):
        colour = "white" if dark[i, j] else "black"
        # Up to 999,999 a count fits its cell in full; from a million on (1.0M), compactly.
        text = f"{value:,}" if value < 1_000_000 else _compact(int(value))
        ax.text(j, i, text, fontsize=fontsize, color=colour, **_IN_CELL)


def _draw_sparse_counts(fig: Figure, ax, cm: np.ndarray) -> None:
    """Log colours with empty cells left white, and the non-zero counts, compactly."""
    top = max(int(cm.max(initial=0)), 2)
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="white")
    image = ax.imshow(
        np.ma.masked_equal(cm, 0),
        cmap=cmap,
        norm=LogNorm(vmin=1, vmax=top),
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, shrink=0.6, label="count (log scale; empty cells are white)")
    dark = cm > np.sqrt(top)  # past the middle of the log scale
    for i, j in zip(*np.nonzero(cm), strict=True):
        colour = "white" if dark[i, j] else "black"
        ax.text(j, i, _compact(int(cm[i, j])), fontsize=6, color=colour, **_IN_CELL)


def _compact(count: int) -> str:
    """A count in at most four characters: 7, 512, 1.2k, 35k, 1.5M."""
    for scale, suffix in ((1_000_000, "M"), (1_000, "k")):
        # From 999,500 on, a count rounds to 1000k, five characters: it is written 1.0M.
        if count >= scale - scale // 2000:
            value = count / scale
            return f"{value:.1f}{suffix}" if value < 9.95 else f"{value:.0f}{suffix}"
    return str(count)


def samples_figure(images, labels, class_names: Sequence[str], title: str, n: int = 25) -> Figure:
    """Grid of the first `n` images with their class names, and the first one drawn large.

    The large picture shows raw pixel values with a colour bar, as the study note does with
    plt.imshow(x_train[0][0]) and plt.colorbar().
    """
    tiles = _images(images)
    names = _names(class_names)
    idx = _class_indices(labels, len(tiles), len(names), "labels")
    if n < 1:
        raise PlotError(f"n must be at least 1, got {n}")
    if len(tiles) == 0:
        raise PlotError("no images to draw: images is empty")
    k = min(n, len(tiles))
    vrange = _pixel_range(tiles[:k])
    rows, cols = _grid_shape(k)
    s = tiles.shape[1]
    grid_w, grid_h = _grid_figsize(rows, cols, 1.0, 1.0)
    fig = Figure(figsize=(grid_w + 5.5, max(grid_h, 5.0)), dpi=DPI, layout="constrained")
    fig.suptitle(title, **PLAIN)
    grid_ax, big_ax = fig.subplots(1, 2, width_ratios=[grid_w, 5.5])
    _draw_grid(grid_ax, tiles[:k], [names[i] for i in idx[:k]], vrange, s + GAP)
    grid_ax.set_title(f"first {k} images")
    big = big_ax.imshow(tiles[0], vmin=vrange[0], vmax=vrange[1], interpolation="nearest")
    fig.colorbar(big, ax=big_ax, shrink=0.8, label="pixel value")
    big_ax.set_title(f"image 0: {names[idx[0]]}", **PLAIN)
    return fig


def misclassified_figure(
    images, target, predicted, confidence, class_names: Sequence[str], title: str, n: int = 25
) -> Figure:
    """Grid of the first `n` mistakes, each captioned "true → predicted (confidence)".

    All arrays are aligned row by row; rows where target == predicted are skipped, so either a
    whole split or only the mistakes the caller picked may be passed. Mistakes are shown in the
    order given. With none, the picture says so.
    """
    tiles = _images(images)
    names = _names(class_names)
    t = _class_indices(target, len(tiles), len(names), "target")
    p = _class_indices(predicted, len(tiles), len(names), "predicted")
    conf = np.asarray(confidence, dtype=np.float64)
    if conf.shape != (len(tiles),):
        raise PlotError(
            f"confidence must be {len(tiles)} values (one per image), got shape {conf.shape}"
        )
    if not np.all((conf >= 0) & (conf <= 1)):
        raise PlotError(
            "confidence must lie in 0..1 (the predicted class's probability), found "
            f"{conf[~((conf >= 0) & (conf <= 1))][:5].tolist()}"
        )
    if n < 1:
        raise PlotError(f"n must be at least 1, got {n}")
    wrong = np.flatnonzero(t != p)
    chosen = wrong[:n]
    if len(chosen) == 0:  # no axes: nothing for a layout engine to do (it would warn so)
        fig = Figure(figsize=(6, 3), dpi=DPI)
        fig.suptitle(title, **PLAIN)
        fig.text(0.5, 0.5, "no misclassified images", ha="center", fontsize=14)
        return fig
    rows, cols = _grid_shape(len(chosen))
    s = tiles.shape[1]
    # Wide cells: a caption like "T-shirt/top → Ankle boot (0.97)" needs about 1.8 inches.
    cell_w = 3 * s
    width, height = _grid_figsize(rows, cols, 2.2, cell_w / (s + GAP))
    fig = Figure(figsize=(max(width, 6.0), height), dpi=DPI, layout="constrained")
    fig.suptitle(title, **PLAIN)
    ax = fig.add_subplot()
    captions = [f"{names[t[i]]} → {names[p[i]]} ({conf[i]:.2f})" for i in chosen]
    _draw_grid(ax, tiles[chosen], captions, _pixel_range(tiles[chosen]), cell_w)
    ax.set_title("true class → predicted class (confidence)")
    return fig


HISTORY_COLUMNS = ("epoch", "loss", "train_accuracy", "test_accuracy")


def training_curves_figure(history: "pd.DataFrame") -> Figure:
    """Loss and accuracy (train and test) per epoch, side by side."""
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise PlotError(
            f"training history lacks column(s) {missing}: expected {list(HISTORY_COLUMNS)}, "
            f"found {list(history.columns)}"
        )
    if history.empty:
        raise PlotError("training history has no rows: nothing to plot")
    fig = Figure(figsize=(11, 4.5), dpi=DPI, layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    epoch = history["epoch"].to_numpy()
    loss_ax.plot(epoch, history["loss"].to_numpy(), marker="o", markersize=3)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="training loss")
    for column, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
        acc_ax.plot(epoch, history[column].to_numpy(), marker="o", markersize=3, label=label)
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    return fig


# Writers: build the figure (inputs are checked before anything is written), then save it.


def plot_confusion_matrix(
    cm, class_names: Sequence[str], path: str | os.PathLike, title: str
) -> None:
    """Write confusion_matrix_figure(...) to `path` as PNG."""
    _save(confusion_matrix_figure(cm, class_names, title), path)


def plot_samples(
    images, labels, class_names: Sequence[str], path: str | os.PathLike, title: str, n: int = 25
) -> None:
    """Write samples_figure(...) to `path` as PNG."""
    _save(samples_figure(images, labels, class_names, title, n), path)


def plot_misclassified(
    images,
    target,
    predicted,
    confidence,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str,
    n: int = 25,
) -> None:
    """Write misclassified_figure(...) to `path` as PNG."""
    _save(misclassified_figure(images, target, predicted, confidence, class_names, title, n), path)


def plot_training_curves(history: "pd.DataFrame", path: str | os.PathLike) -> None:
    """Write training_curves_figure(history) to `path` as PNG."""
    _save(training_curves_figure(history), path)
