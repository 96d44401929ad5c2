"""The plain-text part of an email, derived once from the compiled HTML (Jinja placeholders intact).

Hidden elements (the preheader), head, style and Outlook-only markup are left out; links become
`label (url)`; blocks become lines. The result is a Jinja template rendered without autoescape.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset({"p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "br", "hr",
                     "blockquote", "section", "article", "header", "footer"})
_SKIP = frozenset({"head", "style", "script", "title", "noscript"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "source", "wbr"})
_SPACES = re.compile(r"[ \t\r\f\v]+")  # not str.split(): it would eat Babel's no-break spaces
_HIDDEN = re.compile(r"display\s*:\s*none", re.I)


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0
        self.stack: list[tuple[str, bool, str | None]] = []  # (tag, skipping, href)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in _BLOCKS:
            self.out.append("\n")
        if tag == "li" and not self.skip_depth:
            self.out.append("- ")
        if tag in _VOID:
            return
        hidden = tag in _SKIP or bool(_HIDDEN.search(attributes.get("style") or ""))
        if hidden:
            self.skip_depth += 1
        href = attributes.get("href") if tag == "a" else None
        self.stack.append((tag, hidden, href))
        if tag == "a":
            self._link_start = len(self.out)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.stack:
            name, hidden, href = self.stack.pop()
            if hidden:
                self.skip_depth -= 1
            if name == "a" and href and not self.skip_depth:
                label = "".join(self.out[getattr(self, "_link_start", len(self.out)):]).strip()
                if href.strip() and href.strip() != label and not href.startswith(("#", "mailto:")):
                    self.out.append(f" ({href.strip()})")
            if name == tag:
                break
        if tag in _BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.out.append(data)


def html_to_text(html: str) -> str:
    body = html.split("<body", 1)[1] if "<body" in html else html
    writer = _TextWriter()
    writer.feed("<body" + body if "<body" in html else body)
    writer.close()
    lines = [_SPACES.sub(" ", line).strip(" ") for line in "".join(writer.out).split("\n")]
    text, blank = [], True
    for line in lines:
        if line:
            text.append(line)
            blank = False
        elif not blank:
            text.append("")
            blank = True
    return "\n".join(text).strip() + "\n"
