"""The answer of a run, through the real DAG: the block at the end of `snakemake`'s output, and
the front page of `snakemake --report`, looked at in headless Chromium."""

import base64
import html
import json
import re
import shlex
import shutil
import subprocess
import unicodedata

import numpy as np
import pytest
import yaml

from mnist_pipeline.network import SHAPES
from mnist_pipeline.weights import save_weights

from browser import WINDOW, find_chromium, network_jail, open_page, png_size
from idxgen import random_split
from mirror import LoopbackMirror
from project import SNAKEMAKE, archives, edit_overlay, make_project, pins, snakemake, write_overlay

SPLITS = ("test", "train")
BLOCK_LINE = re.compile(r"^  mnist (\w+) +accuracy (\d\.\d{4}) \((\d+)/(\d+)\)$")
# The oddest weights path the config admits (markup and C0 controls are refused at load): a
# C1 control sequence introducer and a right-to-left override, which could rewrite a terminal
# line or hide text; and class names with every separator a name may hold.
TERMINAL_PAYLOAD = "\x9b2J\u202e"
ODD_CLASSES = ["T-shirt/top", "a.b_c-d e", *map(str, range(2, 10))]


def without_controls(text):
    for control in "\x9b\u202e":
        text = text.replace(control, "?")
    return text


def random_weights(path):
    rng = np.random.default_rng(0)
    save_weights(path, {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()})
    return path


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(300, seed=3), "test": random_split(200, seed=4)}


def given_weights_project(folder, data, mirror, weights_name="given.npz", **settings):
    project = make_project(folder)
    weights = project / weights_name
    weights.parent.mkdir(parents=True, exist_ok=True)
    random_weights(weights)
    write_overlay(
        project,
        [mirror.url],
        pins(archives(data)),
        splits=list(SPLITS),
        model={"weights": str(weights)},
        **settings,
    )
    return project


@pytest.fixture(scope="module")
def run(tmp_path_factory, data, mirror):
    """A project and the merged output of its first `snakemake --cores 2`, with given weights."""
    project = given_weights_project(tmp_path_factory.mktemp("project"), data, mirror)
    return project, snakemake(project, merged=True).stdout


def answer(output):
    """The block at the end of `output`, from its 'Results:' line."""
    lines = output.rstrip("\n").splitlines()
    assert lines.count("Results:") == 1, output
    return lines[lines.index("Results:") :], lines[: lines.index("Results:")]


def accuracy_json(project, split):
    return json.loads((project / f"results/reports/mnist/{split}/accuracy.json").read_text())


def test_a_run_ends_with_accuracy_per_split_and_where_to_look(run):
    project, output = run
    block, before = answer(output)
    # Snakemake's own summary comes first, untouched; the block is the last thing printed.
    assert any("steps (100%) done" in line for line in before)
    assert before[-2].startswith("Complete log(s): ") and before[-1].startswith("Elapsed time: ")
    assert len(block) == 6, block
    for line, split in zip(block[1:3], SPLITS, strict=True):
        found = BLOCK_LINE.match(line)
        assert found, line
        expected = accuracy_json(project, split)
        assert found.group(1) == split
        assert float(found.group(2)) == pytest.approx(expected["accuracy"], abs=5e-5)
        assert (int(found.group(3)), int(found.group(4))) == (
            expected["correct"],
            expected["total"],
        )
    assert block[3].split(maxsplit=1) == ["weights", str(project / "given.npz")]
    assert block[4].split(maxsplit=1) == ["reports", "results/reports/mnist/"]
    assert block[5].split(maxsplit=2) == [
        "HTML",
        "report",
        "snakemake --report report.html --configfile overlay.yaml",
    ]


@pytest.mark.parametrize(
    "args",
    [("--dry-run", "--forcerun", "evaluate_metrics"), ("--lint",), ("--report", "other.html")],
    ids=["dry-run", "lint", "report"],
)
def test_runs_that_compute_nothing_print_no_answer(run, args):
    project, _ = run
    output = snakemake(project, *args, merged=True).stdout
    assert "Results:" not in output and "accuracy 0." not in output, output
    if args[0] == "--dry-run":
        assert "This was a dry-run" in output


def test_a_run_whose_mirror_404s_prints_no_answer(tmp_path, data):
    project = make_project(tmp_path / "project")
    with LoopbackMirror({}) as empty:
        write_overlay(project, [empty.url], pins(archives(data)))
        result = snakemake(project, check=False, merged=True)
    assert result.returncode != 0
    assert "404" in result.stdout and "Results:" not in result.stdout, result.stdout


def test_a_failed_run_prints_no_answer_even_with_earlier_results(run, tmp_path):
    """The earlier run's accuracy.json files are there; a failing rerun still says nothing."""
    project = shutil.copytree(run[0], tmp_path / "project", symlinks=True)
    bad = project / "bad.npz"
    np.savez(
        bad, **{k: np.zeros((s[0], 3) if k == "W3" else s, np.float32) for k, s in SHAPES.items()}
    )
    edit_overlay(project, lambda o: o["model"].update(weights=str(bad)))
    result = snakemake(project, check=False, merged=True)
    assert result.returncode != 0 and "W3" in result.stdout
    assert (project / "results/reports/mnist/test/accuracy.json").is_file()
    assert "Results:" not in result.stdout, result.stdout


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, data, mirror):
    """A run whose weights path holds terminal escapes and whose class names are the oddest
    admitted."""
    name = f"a %20 (1){TERMINAL_PAYLOAD}.npz"
    classes = ODD_CLASSES
    project = given_weights_project(tmp_path_factory.mktemp("hostile"), data, mirror, name)
    overlay = project / "overlay.yaml"
    settings = yaml.safe_load(overlay.read_text())
    settings["datasets"]["mnist"]["classes"] = classes
    overlay.write_text(yaml.safe_dump(settings))
    return project, snakemake(project, merged=True).stdout, project / name


def test_the_answer_shows_config_text_without_control_characters(hostile):
    project, output, weights = hostile
    block, _ = answer(output)
    assert not [c for line in block for c in line if unicodedata.category(c).startswith("C")]
    assert block[3].split(maxsplit=1)[1] == without_controls(str(weights))


# The report, as a browser shows it.


@pytest.fixture(scope="session")
def chromium():
    found, reason = find_chromium()
    if found is None:
        pytest.skip(reason)
    return found, network_jail()


def make_report(project, output):
    """Run the report command the block printed, as a user would copy it."""
    command = shlex.split(answer(output)[0][5].split(maxsplit=2)[2])
    assert command[:3] == ["snakemake", "--report", "report.html"]
    done = subprocess.run(
        [SNAKEMAKE, *command[1:]], cwd=project, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "Results:" not in done.stdout + done.stderr
    return project / "report.html"


@pytest.fixture(scope="module")
def report(run):
    return make_report(*run)


def summary_rows(dom):
    """The cells of the front page's accuracy table, one list per row, as text."""
    start = dom.index('<div class="mnist-summary">')
    table = dom[start : dom.index("</div>", start)]
    return [
        [html.unescape(re.sub(r"<[^>]*>", "", cell)).strip() for cell in cells]
        for cells in (
            re.findall(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", row, re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        )
    ]


def test_the_front_page_shows_the_accuracy_of_each_split(chromium, run, report, tmp_path):
    project, _ = run
    page = open_page(*chromium, report, tmp_path / "front.png")
    assert png_size(page.screenshot) == WINDOW
    rows = summary_rows(page.dom)
    assert rows[0] == ["split", "accuracy", "correct / total", "confusion matrix"]
    for row, split in zip(rows[1:], SPLITS, strict=True):
        expected = accuracy_json(project, split)
        assert row == [
            split,
            f"{expected['accuracy']:.4f}",
            f"{expected['correct']:,} / {expected['total']:,}",
            "view",
        ]
    model = re.search(r'<div class="mnist-summary">\s*<p>(.*?)</p>', page.dom, re.S).group(1)
    assert str(project / "given.npz") in html.unescape(re.sub(r"<[^>]*>", "", model))


def test_the_confusion_matrix_is_one_click_from_the_front_page(chromium, run, report, tmp_path):
    """Click the test row's link (in a copy of the report that clicks once it has loaded): the
    page then shows the confusion matrix, byte for byte the PNG evaluate wrote."""
    project, _ = run
    click = (
        "<script>addEventListener('load', () => setTimeout(() => [...document.querySelectorAll("
        "'.mnist-summary tr')].find(r => r.cells[0].textContent === 'test')"
        ".querySelector('a').click(), 500));</script>"
    )
    text = report.read_text()
    end = text.rindex("</body>")  # the document's; the scripts hold the string too
    clicked = tmp_path / "clicked.html"
    clicked.write_text(text[:end] + click + text[end:])
    page = open_page(*chromium, clicked, tmp_path / "clicked.png")
    images = re.findall(r'<img src="data:image/png;[^"]*base64,([^"]+)"', page.dom)
    matrix = (project / "results/reports/mnist/test/confusion_matrix.png").read_bytes()
    assert [base64.b64decode(i) for i in images] == [matrix]
    assert "results/reports/mnist/test/confusion_matrix.png" in page.dom


@pytest.fixture(scope="module")
def hostile_report(hostile):
    return make_report(*hostile[:2])


def test_config_text_shows_as_text_and_runs_nothing(chromium, hostile, hostile_report, tmp_path):
    project, output, weights = hostile
    page = open_page(*chromium, hostile_report, tmp_path / "hostile.png")
    assert "<title>Snakemake Report</title>" in page.dom
    model = re.search(r'<div class="mnist-summary">\s*<p>(.*?)</p>', page.dom, re.S).group(1)
    assert without_controls(str(weights)) in html.unescape(model)


def test_a_report_without_results_still_renders(chromium, data, tmp_path):
    """Made when only the perceptron has run: the front page says how to get the accuracy."""
    project = make_project(tmp_path / "project")
    write_overlay(project, ["http://127.0.0.1:9/"], pins(archives(data)))
    targets = ["results/perceptron/gates.csv", "results/perceptron/xor_compositions.csv"]
    snakemake(project, *targets)
    snakemake(project, "--report", "report.html", *targets)
    page = open_page(*chromium, project / "report.html", tmp_path / "empty.png")
    assert "No accuracy in this report yet" in page.dom
    assert 'class="mnist-summary"' not in page.dom
