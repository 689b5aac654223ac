"""Config text in `snakemake --report`: what the schema admits arrives as data, never as markup;
what could be markup stops at load, naming the key."""

import json
import re
from html.parser import HTMLParser
from importlib.resources import files

import pytest

from idxgen import random_split
from mirror import LoopbackMirror
from project import archives, make_project, pins, random_weights, snakemake, write_overlay

SCRIPT = "</script><script>alert(1)</script>"

# Odd but admitted: every punctuation mark the class-name pattern allows, words that mean
# something in HTML, and a weights path with shell, URL and JavaScript-escape look-alikes.
CLASSES = [
    "T-shirt/top",
    "Ankle boot",
    "tsu",
    "a.b_c-d",
    "x / y",
    "script",
    "alert 1",
    "0",
    "Z",
    "b",
]
ODD_FOLDER = r"odd $HOME #1 %3C ; é \u003c!--"


class Scripts(HTMLParser):
    """The <script> elements of a page, as a browser splits them: each one's text ends at the
    first </script>, whatever it is inside."""

    def __init__(self):
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data):
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def scripts_of(html: str) -> list[tuple[dict, str]]:
    parser = Scripts()
    parser.feed(html)
    parser.close()
    return parser.scripts


def template_script_count() -> int:
    """How many <script> elements Snakemake's report template writes."""
    template = files("snakemake.report.html_reporter.template") / "index.html.jinja2"
    return template.read_text(encoding="utf-8").count("<script")


def embedded(scripts: list[tuple[dict, str]], script_id: str, variable: str):
    """The JSON a data script of the report assigns to `variable`."""
    (text,) = [text for attrs, text in scripts if attrs.get("id") == script_id]
    match = re.fullmatch(rf"\s*var {variable} = (.*);\s*", text, flags=re.DOTALL)
    assert match, text[:200]
    return json.loads(match.group(1))


def write_mnist_overlay(
    project, data, mirrors=("http://127.0.0.1:9/",), classes=CLASSES, weights=None
):
    """The overlay of tests/project.py, with these class names and weights for mnist."""
    mnist = {"mirrors": list(mirrors), "files": pins(archives(data)), "classes": classes}
    write_overlay(
        project, mirrors, mnist["files"], datasets={"mnist": mnist}, model={"weights": weights}
    )


@pytest.fixture(scope="module")
def data():
    return {"train": random_split(30, seed=5), "test": random_split(40, seed=6)}


@pytest.fixture(scope="module")
def report(tmp_path_factory, data):
    """report.html of a run whose class names and weights path are as odd as the schema allows."""
    project = make_project(tmp_path_factory.mktemp("project"))
    weights = project / ODD_FOLDER / "w (1).npz"
    weights.parent.mkdir()
    random_weights(weights, seed=0)
    with LoopbackMirror(archives(data)) as mirror:
        write_mnist_overlay(project, data, [mirror.url], weights=str(weights))
        snakemake(project)
    snakemake(project, "--report", "report.html")
    return project / "report.html", weights


def test_the_report_has_only_the_templates_scripts(report):
    path, _ = report
    scripts = scripts_of(path.read_text(encoding="utf-8"))
    # a config value that closed a <script> early would add an element (and break the JSON)
    assert len(scripts) == template_script_count()
    assert not any("alert" in text and "alert 1" not in text for _, text in scripts)


def test_config_text_reaches_the_report_as_data(report):
    path, weights = report
    scripts = scripts_of(path.read_text(encoding="utf-8"))
    results = embedded(scripts, "results", "results")
    evaluated = [r for r in results.values() if r["job_properties"]["rule"] == "evaluate_metrics"]
    assert evaluated, sorted(results)
    params = evaluated[0]["job_properties"]["params"]
    # the values arrive whole: they were embedded, as JSON strings, not dropped or mangled
    assert f"classes={CLASSES}" in params
    assert f"weights_source={weights}" in params
    # the JavaScript escape in the folder name stays the six characters it is
    assert "\\u003c!--" in params and "<!--" not in params


@pytest.mark.parametrize(
    ("key", "change"),
    [
        ("datasets.mnist.classes.0", {"classes": [SCRIPT, *CLASSES[1:]]}),
        ("datasets.mnist.classes.0", {"classes": ["$x^2$", *CLASSES[1:]]}),
        ("datasets.mnist.mirrors.0", {"mirrors": [f"http://127.0.0.1:9/{SCRIPT}/"]}),
        ("model.weights", {"weights": f"{SCRIPT}.npz"}),
    ],
    ids=["class script", "class math", "mirror script", "weights script"],
)
@pytest.mark.parametrize("command", [(), ("--report", "report.html")], ids=["run", "report"])
def test_markup_in_the_config_stops_at_load(tmp_path, data, key, change, command):
    project = make_project(tmp_path / "project")
    write_mnist_overlay(project, data, **change)
    result = snakemake(project, *command, check=False)
    assert result.returncode != 0
    assert f"config key '{key}'" in result.stderr, result.stderr
    assert "config/README.md explains each key" in result.stderr
    assert not (project / "results").exists()
    assert not (project / "report.html").exists()
