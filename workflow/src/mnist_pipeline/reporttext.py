"""Untrusted text (class names, file paths from the config) on its way to a terminal or to HTML."""

import html
import unicodedata


def printable(text: str) -> str:
    """`text` with every control or format character (escape sequences, carriage returns,
    bidirectional overrides) replaced by '?', so it cannot rewrite a terminal or hide text."""
    return "".join("?" if unicodedata.category(c).startswith("C") else c for c in text)


def html_text(text: str) -> str:
    """`text` made printable and escaped for HTML text and attribute values."""
    return html.escape(printable(text), quote=True)
