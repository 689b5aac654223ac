"""The run's answer as text: the terminal block, the front page's HTML, untrusted text in both."""

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from mnist_pipeline.reporttext import html_text, printable
from mnist_pipeline.summary import (
    SplitResult,
    SummaryError,
    read_results,
    report_command,
    run_summary,
    show_image_link,
    summary_html,
    terminal_block,
)

MARKUP = "</script><img src=x onerror=alert(1)>&amp;'\""
CONTROLS = "\x1b[2J\x1b]0;x\x07\r\n\x9b1m\u202e\u200f\x00\x7f"


def result(split="test", dataset="mnist", weights="w.npz", correct=9352, total=10000):
    return SplitResult(
        path=Path(f"results/reports/{dataset}/{split}/accuracy.json"),
        dataset=dataset,
        split=split,
        accuracy=correct / total,
        correct=correct,
        total=total,
        weights=weights,
        weights_sha256="b7f55a27988ba34c3777b0f1bbd464817c8a4db855723e6ff26f703501917a13",
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["snakemake", "--cores", "4"], "snakemake --report report.html"),
        (
            ["snakemake", "--configfile", "my mirror.yaml", "b.yaml", "--cores", "2", "all"],
            "snakemake --report report.html --configfile 'my mirror.yaml' b.yaml",
        ),
        (
            ["snakemake", "-c4", "--config", "dataset=kmnist", "batch_size=7", "-n"],
            "snakemake --report report.html --config dataset=kmnist batch_size=7",
        ),
        (
            ["snakemake", "--configfile=o.yaml", "all", "-d", "/w", "all", "-C", "x=1"],
            "snakemake --report report.html --configfile=o.yaml -d /w -C x=1",
        ),
        (["snakemake", "-d/w", "-Cx=1", "all"], "snakemake --report report.html -d/w -Cx=1"),
        (
            ["snakemake", "--config", "a=\x1b[31m;rm -rf ~"],
            "snakemake --report report.html --config 'a=?[31m;rm -rf ~'",
        ),
    ],
)
def test_the_report_command_keeps_the_options_that_choose_the_results(argv, expected):
    assert report_command(argv) == expected


def test_the_terminal_block_has_a_line_per_split_then_weights_and_folders():
    block = terminal_block(
        [result("train", correct=56146, total=60000), result("test")], ["snakemake"]
    )
    assert block.splitlines() == [
        "Results:",
        "  mnist test   accuracy 0.9352 (9352/10000)",
        "  mnist train  accuracy 0.9358 (56146/60000)",
        "  weights      w.npz",
        "  reports      results/reports/mnist/",
        "  HTML report  snakemake --report report.html",
    ]


def test_the_terminal_block_names_the_datasets_of_each_weights_when_they_differ():
    block = terminal_block(
        [result(dataset="mnist", weights="a.npz"), result(dataset="kmnist", weights="b.npz")],
        ["snakemake"],
    ).splitlines()
    assert block[3:6] == [
        "  weights kmnist  b.npz",
        "  weights mnist   a.npz",
        "  reports         results/reports/kmnist/, results/reports/mnist/",
    ]


def test_the_terminal_block_is_empty_without_results():
    assert terminal_block([], ["snakemake"]) == ""


def test_the_terminal_block_shows_config_text_without_control_characters():
    block = terminal_block([result(weights=f"w{CONTROLS}.npz")], ["snakemake"])
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u200f\u202e]", block.replace("\n", ""))
    assert "w?[2J?]0;x???" in block


def test_read_results_reads_what_evaluate_writes(tmp_path):
    path = tmp_path / "accuracy.json"
    about = {"dataset": "mnist", "split": "test", "accuracy": 0.5, "correct": 1, "total": 2}
    path.write_text(json.dumps({**about, "weights": "w.npz", "weights_sha256": "ab"}))
    assert read_results([path]) == [
        SplitResult(path, "mnist", "test", 0.5, 1, 2, "w.npz", "ab"),
    ]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"dataset": "mnist", "split": "test", "accuracy": 0.5, "total": 2}', "'correct'"),
        ("{not json", "JSONDecodeError"),
        (
            '{"dataset": "mnist", "split": "test", "accuracy": "high", "correct": 1, "total": 2}',
            "high",
        ),
        (None, "FileNotFoundError"),
    ],
    ids=["missing-key", "not-json", "not-a-number", "missing-file"],
)
def test_an_accuracy_file_it_cannot_read_is_named_with_what_to_do(tmp_path, content, said):
    path = tmp_path / "accuracy.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SummaryError) as error:
        read_results([path])
    message = str(error.value)
    assert str(path) in message and said in message and "run snakemake again" in message
    assert run_summary([path], ["snakemake"]) == printable(f"No summary of the results: {message}")


class _Page(HTMLParser):
    """Elements and text of an HTML fragment."""

    def __init__(self, fragment):
        super().__init__()
        self.tags, self.links, self.text = [], [], []
        self.feed(fragment)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name == "href"]

    def handle_data(self, data):
        self.text.append(data)


def test_the_front_page_fragment_shows_config_text_as_text():
    page = _Page(summary_html([result(weights=MARKUP + CONTROLS)], ["results/x/cm.png"]))
    assert set(page.tags) == {
        "div",
        "p",
        "strong",
        "table",
        "thead",
        "tr",
        "th",
        "tbody",
        "td",
        "a",
    }
    assert printable(MARKUP + CONTROLS) in "".join(page.text)


def test_the_front_page_fragment_has_a_row_per_split_in_order():
    fragment = summary_html(
        [result("train", correct=56146, total=60000), result("test")],
        ["results/reports/mnist/train/cm.png", "results/reports/mnist/test/cm.png"],
    )
    rows = re.findall(r"<tr>(.*?)</tr>", fragment)
    cells = [
        [html.unescape(re.sub("<[^>]*>", "", c)) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", r)]
        for r in rows
    ]
    assert cells[1:] == [
        ["test", "0.9352", "9,352 / 10,000", "view"],
        ["train", "0.9358", "56,146 / 60,000", "view"],
    ]
    links = _Page(fragment).links
    assert [re.findall(r"resultPath:'([^']*)'", link) for link in links] == [
        ["results/reports/mnist/test/cm.png"],
        ["results/reports/mnist/train/cm.png"],
    ]


@pytest.mark.parametrize("path", ["results/a'b/c.png", "results/%27);alert(1)//.png", 'r/ü"<>.png'])
def test_an_image_link_keeps_any_path_inside_its_string(path):
    """A javascript: URL is percent-decoded before it runs: the path's string must end where the
    link means it to, whatever the path holds."""
    link = unquote(html.unescape(html_text(show_image_link(path))))
    strings = re.findall(r"'((?:[^'\\]|\\.)*)'", link)
    assert (
        strings[-2:] == [re.sub(r"[^A-Za-z0-9/._-]", lambda m: f"\\u{{{ord(m[0]):x}}}", path)] * 2
    )
    code = re.sub(r"'((?:[^'\\]|\\.)*)'", "S", link)
    assert code == (
        "javascript:app.setView({navbarMode:S,content:S,resultPath:S,contentPath:results[S].data_uri})"
    )
