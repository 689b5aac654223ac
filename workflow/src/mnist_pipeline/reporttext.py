"""Untrusted text (class names, file paths from the config) on its way to a terminal or to HTML."""

import html
import json
import unicodedata
from typing import Any

# JSON escapes that keep a value inert inside HTML and inside an HTML <script> element.
_HTML_INERT = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"})


def printable(text: str) -> str:
    """`text` with every control or format character (escape sequences, carriage returns,
    bidirectional overrides) replaced by '?', so it cannot rewrite a terminal or hide text."""
    return "".join("?" if unicodedata.category(c).startswith("C") else c for c in text)


def html_text(text: str) -> str:
    """`text` made printable and escaped for HTML text and attribute values."""
    return html.escape(printable(text), quote=True)


def inert_json(value: Any) -> str:
    """`value` as JSON without a literal <, >, & or ' (they become \\u escapes; json.loads gives
    the value back).

    For rule params that carry config text: Snakemake's HTML report embeds a job's params as JSON
    inside a <script> element without escaping, so a class name holding `</script><img ...>`
    would run as markup there. In this form it shows as text.
    """
    return json.dumps(value, ensure_ascii=True).translate(_HTML_INERT)
