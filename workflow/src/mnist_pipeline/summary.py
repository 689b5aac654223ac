"""The run's answer in a few lines: accuracy per dataset and split, for the terminal and the report.

Both read the accuracy.json files of evaluate_metrics. Text that comes from the config or
from file names (the weights' path) is untrusted: the terminal gets it without control characters,
the HTML escaped.
"""

import atexit
import json
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_path
from .errors import MnistPipelineError
from .reporttext import html_text, printable

REPORT_COMMAND = ["snakemake", "--report", "report.html"]
# The options of a run that decide which results a report shows, and how many values each takes
# (None: any number); the report needs the same ones.
_CONFIG_OPTIONS = {
    "--configfile": None,
    "--configfiles": None,
    "--config": None,
    "-C": None,
    "--directory": 1,
    "-d": 1,
}


class SummaryError(MnistPipelineError, ValueError):
    """An accuracy.json the summary cannot read."""


@dataclass(frozen=True)
class SplitResult:
    """What one split's accuracy.json says."""

    path: Path
    dataset: str
    split: str
    accuracy: float
    correct: int
    total: int
    weights: str
    weights_sha256: str

    @property
    def report_folder(self) -> Path:
        """The dataset's report folder: results/reports/{dataset}/."""
        return self.path.parent.parent


def read_results(paths: Iterable[str | Path]) -> list[SplitResult]:
    """The accuracy.json files at `paths`, in their order."""
    return [_read_result(Path(path)) for path in paths]


def _read_result(path: Path) -> SplitResult:
    try:
        about = json.loads(path.read_text(encoding="utf-8"))
        return SplitResult(
            path=path,
            dataset=str(about["dataset"]),
            split=str(about["split"]),
            accuracy=float(about["accuracy"]),
            correct=int(about["correct"]),
            total=int(about["total"]),
            weights=str(about.get("weights", "unknown")),
            weights_sha256=str(about.get("weights_sha256", "")),
        )
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise SummaryError(
            f"{path}: cannot read the accuracy summary ({type(error).__name__}: {error}); "
            "it needs dataset, split, accuracy, correct and total. Delete it and run snakemake "
            "again to rewrite it."
        ) from error


def report_command(argv: Sequence[str]) -> str:
    """The command making the HTML report of the run started with `argv`, with its config options.

    Without them, `snakemake --report` would report on the default config, not on this run.
    """
    kept: list[str] = []
    values_left: int | float = 0
    for arg in argv[1:]:
        if arg.startswith("-"):
            long = arg.startswith("--")
            name = arg.split("=", 1)[0] if long else arg[:2]
            values_left = 0
            if name in _CONFIG_OPTIONS:
                kept.append(arg)
                attached = "=" in arg if long else len(arg) > 2
                if not attached:
                    values_left = _CONFIG_OPTIONS[name] or float("inf")
        elif values_left:
            kept.append(arg)
            values_left -= 1
    return shlex.join(printable(part) for part in [*REPORT_COMMAND, *kept])


def terminal_block(results: Sequence[SplitResult], argv: Sequence[str]) -> str:
    """A few lines for the end of a run: accuracy per dataset and split, weights, where to look.

    Empty when there are no results.
    """
    if not results:
        return ""
    rows = sorted(results, key=lambda r: (r.dataset, r.split))
    lines = [
        (f"{r.dataset} {r.split}", f"accuracy {r.accuracy:.4f} ({r.correct}/{r.total})")
        for r in rows
    ]
    sources = _unique(r.weights for r in rows)
    for source in sources:
        datasets = _unique(r.dataset for r in rows if r.weights == source)
        label = "weights" if len(sources) == 1 else f"weights {', '.join(datasets)}"
        lines.append((label, source))
    lines.append(("reports", ", ".join(_unique(f"{r.report_folder}/" for r in rows))))
    lines.append(("HTML report", report_command(argv)))
    width = max(len(printable(label)) for label, _ in lines)
    return "\n".join(
        [
            "Results:",
            *(f"  {printable(label):<{width}}  {printable(value)}" for label, value in lines),
        ]
    )


def _unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))


def run_summary(accuracy_paths: Iterable[str | Path], argv: Sequence[str]) -> str:
    """The terminal block for these accuracy.json files, or one line saying why there is none."""
    try:
        return terminal_block(read_results(accuracy_paths), argv)
    except SummaryError as error:
        return printable(f"No summary of the results: {error}")


def show_at_exit(text: str) -> None:
    """Print `text` on stdout when the process exits, after everything Snakemake logs at the end
    of a run (its log file's path, the elapsed time)."""
    if text:
        atexit.register(_print, text)


def _print(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def summary_html(results: Sequence[SplitResult], confusion_matrices: Sequence[str]) -> str:
    """An HTML fragment for the report's front page: a table of accuracy per split for each
    model, each row linking to its confusion matrix (the report item at that path)."""
    by_model: dict[tuple[str, str, str], list[tuple[SplitResult, str]]] = {}
    pairs = sorted(zip(results, confusion_matrices, strict=True), key=lambda p: p[0].split)
    for result, matrix in pairs:
        key = (result.dataset, result.weights, result.weights_sha256)
        by_model.setdefault(key, []).append((result, matrix))
    parts = ['<div class="mnist-summary">']
    for (dataset, weights, sha256), rows in by_model.items():
        digest = f" (SHA-256 {html_text(sha256[:12])}…)" if sha256 else ""
        parts += [
            f"<p><strong>{html_text(dataset)}</strong>, weights: {html_text(weights)}{digest}</p>",
            "<table>",
            "<thead><tr><th>split</th><th>accuracy</th><th>correct / total</th>"
            "<th>confusion matrix</th></tr></thead>",
            "<tbody>",
        ]
        for result, matrix in rows:
            parts.append(
                f"<tr><td>{html_text(result.split)}</td>"
                f'<td><strong style="font-size:1.25em">{result.accuracy:.4f}</strong></td>'
                f"<td>{result.correct:,} / {result.total:,}</td>"
                f'<td><a href="{html_text(show_image_link(matrix))}">view</a></td></tr>'
            )
        parts += ["</tbody>", "</table>"]
    parts.append("</div>")
    return "\n".join(parts) + "\n"


def show_image_link(path: str) -> str:
    """A javascript: link that opens the report's image item at `path`, as its view button does.

    The path goes in as a JavaScript string made of letters, digits and `/._-` only, every other
    character as a \\u{...} escape: a javascript: URL is percent-decoded before it runs, so no
    quote or percent sign may appear in it.
    """
    key = _js_string(path)
    return (
        "javascript:app.setView({navbarMode:'resultinfo',content:'img',"
        f"resultPath:{key},contentPath:results[{key}].data_uri}})"
    )


def _js_string(text: str) -> str:
    safe = "".join(
        c if (c.isascii() and c.isalnum()) or c in "/._-" else f"\\u{{{ord(c):x}}}" for c in text
    )
    return f"'{safe}'"


def write_summary_html(
    path: str | Path, results: Sequence[SplitResult], confusion_matrices: Sequence[str]
) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(summary_html(results, confusion_matrices), encoding="utf-8")
