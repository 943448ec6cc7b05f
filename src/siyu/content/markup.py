"""A small, safe "markdown-ish" renderer for article and case text (the public page and the preview).

Everything is escaped first; then: a blank line separates paragraphs, `# `/`## ` start headings,
lines starting with `- ` make a list, `**text**` is bold, and http(s) URLs become links.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_URL = re.compile(r"(https?://[^\s<>&\"']+)")


def _inline(text: str) -> str:
    html = str(escape(text))
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    return _URL.sub(r'<a href="\1" rel="noopener nofollow">\1</a>', html)


def render(text: str | None) -> Markup:
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", (text or "").replace("\r\n", "\n").strip()):
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("## "):
            blocks.append(f"<h3>{_inline(lines[0][3:])}</h3>")
            lines = lines[1:]
        elif lines[0].startswith("# "):
            blocks.append(f"<h2>{_inline(lines[0][2:])}</h2>")
            lines = lines[1:]
        if lines and all(line.lstrip().startswith("- ") for line in lines):
            items = "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        elif lines:
            blocks.append("<p>" + "<br>".join(_inline(line) for line in lines) + "</p>")
    return Markup("\n".join(blocks))  # noqa: S704 - every piece of text was escaped by _inline
