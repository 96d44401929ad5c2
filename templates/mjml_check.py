"""A structural check of MJML source with line numbers.

MRML (mjml-python) is lenient: it silently drops unknown elements and misplaced text, so a typo
such as `<mj-colum>` would vanish from the email. This walks the source and names the line.
"""

from __future__ import annotations

from html.parser import HTMLParser

KNOWN_TAGS = frozenset(
    """mjml mj-head mj-body mj-attributes mj-all mj-class mj-breakpoint mj-font mj-html-attributes
    mj-html-attribute mj-selector mj-preview mj-style mj-title mj-accordion mj-accordion-element
    mj-accordion-title mj-accordion-text mj-button mj-carousel mj-carousel-image mj-column mj-divider
    mj-group mj-hero mj-image mj-navbar mj-navbar-link mj-raw mj-section mj-social mj-social-element
    mj-spacer mj-table mj-text mj-wrapper mj-include""".split()
)

_CONTENT_PARENTS = frozenset({"mj-column", "mj-hero", "mj-attributes"})
ALLOWED_PARENTS: dict[str, frozenset[str]] = {
    "mj-head": frozenset({"mjml"}),
    "mj-body": frozenset({"mjml"}),
    "mj-section": frozenset({"mj-body", "mj-wrapper", "mj-attributes"}),
    "mj-wrapper": frozenset({"mj-body", "mj-attributes"}),
    "mj-hero": frozenset({"mj-body", "mj-wrapper", "mj-attributes"}),
    "mj-column": frozenset({"mj-section", "mj-group", "mj-attributes"}),
    "mj-group": frozenset({"mj-section", "mj-attributes"}),
    **{
        tag: _CONTENT_PARENTS
        for tag in ("mj-text", "mj-button", "mj-image", "mj-divider", "mj-spacer", "mj-table", "mj-social",
                    "mj-navbar", "mj-carousel", "mj-accordion")
    },
}
_RAW_CONTENT = frozenset({"mj-text", "mj-raw", "mj-table", "mj-button", "mj-navbar-link", "mj-social-element",
                          "mj-accordion-title", "mj-accordion-text", "mj-style", "mj-preview", "mj-title"})


class _Walker(HTMLParser):
    def __init__(self, line_offset: int) -> None:
        super().__init__(convert_charrefs=True)
        self._line_offset = line_offset
        self.stack: list[tuple[str, int]] = []
        self.problems: list[tuple[int, str]] = []
        self.saw_root = False

    def _line(self) -> int:
        return self.getpos()[0] + self._line_offset

    def _inside_raw(self) -> bool:
        return bool(self.stack) and self.stack[-1][0] in _RAW_CONTENT

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, closes=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, closes=True)

    def _open(self, tag: str, closes: bool) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")):
            return  # HTML inside mj-text and friends is the author's business
        line = self._line()
        in_attributes = any(name == "mj-attributes" for name, _ in self.stack)
        if tag not in KNOWN_TAGS:
            self.problems.append((line, f"invalid MJML: unknown element <{tag}>"))
        elif tag == "mjml":
            if self.stack:
                self.problems.append((line, "invalid MJML: <mjml> must be the root element"))
            self.saw_root = True
        elif not self.stack:
            self.problems.append((line, f"invalid MJML: <{tag}> outside <mjml>"))
        elif not in_attributes:
            parent = self.stack[-1][0]
            allowed = ALLOWED_PARENTS.get(tag)
            if allowed is not None and parent not in allowed:
                self.problems.append((line, f"invalid MJML: <{tag}> cannot be inside <{parent}>"))
        if not closes:
            self.stack.append((tag, line))

    def handle_endtag(self, tag: str) -> None:
        if not (tag == "mjml" or tag.startswith("mj-")):
            return
        line = self._line()
        if not self.stack or self.stack[-1][0] != tag:
            expected = f"</{self.stack[-1][0]}> (opened at line {self.stack[-1][1]})" if self.stack else "nothing"
            self.problems.append((line, f"invalid MJML: </{tag}> closes {expected}"))
            names = [name for name, _ in self.stack]
            if tag in names:
                del self.stack[len(names) - 1 - names[::-1].index(tag):]
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and not self._inside_raw() and data.strip():
            tag = self.stack[-1][0]
            if tag not in ("mj-attributes", "mj-head", "mjml") and not tag.startswith("mj-accordion"):
                snippet = data.strip().splitlines()[0][:40]
                line = self._line() + data[: len(data) - len(data.lstrip())].count("\n")
                if snippet.startswith(("{%", "{{", "{#")):
                    self.problems.append((line, f"Jinja tag {snippet!r} directly inside <{tag}> is lost in MJML "
                                                "compilation (keep Jinja inside text and attribute values)"))
                else:
                    self.problems.append((line, f"invalid MJML: text {snippet!r} directly inside <{tag}> is dropped"))


def check_mjml_structure(source: str, line_offset: int = 0) -> list[tuple[int, str]]:
    """(line, message) for each structural problem; lines are shifted by `line_offset`."""
    walker = _Walker(line_offset)
    walker.feed(source)
    walker.close()
    if not walker.saw_root:
        walker.problems.append((1 + line_offset, "invalid MJML: no <mjml> root element"))
    for tag, line in walker.stack:
        walker.problems.append((line, f"invalid MJML: <{tag}> is never closed"))
    return walker.problems
