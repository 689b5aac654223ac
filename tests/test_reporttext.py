"""Untrusted text on its way to a terminal or to HTML."""

from mnist_pipeline.reporttext import html_text, printable

MARKUP = "</script><img src=x onerror=alert(1)>&amp;'\""
CONTROLS = "\x1b[2J\x1b]0;x\x07\r\n\x9b1m\u202e\u200f\x00\x7f"


def test_printable_replaces_every_control_and_format_character():
    assert printable(f"a{CONTROLS}b") == "a?[2J?]0;x???" + "?1m" + "????b"
    assert printable("Ankle boot, ㅋ, é, 🙂") == "Ankle boot, ㅋ, é, 🙂"


def test_html_text_escapes_markup_and_quotes_after_removing_controls():
    assert html_text(MARKUP + "\x1b") == (
        "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;&#x27;&quot;?"
    )
