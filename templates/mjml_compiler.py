"""MJML to HTML once per (template, locale), with the Jinja left in place for per-recipient rendering.

Steps: Jinja tags are swapped for inert placeholders (so neither MRML nor the CSS inliner can touch
them); `<mj-style inline="inline">` blocks are taken out, because MRML does not inline them; MRML
compiles; the taken-out CSS is inlined with css-inline; Rust-escaped attribute values (MRML writes a
newline in an attribute as a literal `\\n`) are reported and repaired; the placeholders go back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import css_inline
import mjml

JINJA_TOKEN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
PLACEHOLDER = re.compile(r"__jinja_(\d+)__")
INLINE_STYLE = re.compile(r"<mj-style\b[^>]*\binline\s*=\s*[\"']inline[\"'][^>]*>(.*?)</mj-style\s*>", re.S | re.I)
_TAG = re.compile(r'<[A-Za-z](?:[^<>"]|"(?:[^"\\]|\\.)*")*>')
RUST_ESCAPE = re.compile(r"\\(?:n|r|t|\"|u\{[0-9a-fA-F]+\})")
_MRML_POSITION = re.compile(r"at position (\d+):(\d+)")


class MjmlCompileError(ValueError):
    """MRML refused the document; `line` is the source line when MRML gave a position."""

    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class RustEscape:
    line: int | None
    """Source line of the attribute, when it can be found; else None."""
    attribute: str
    """The attribute as MRML wrote it, shortened."""


@dataclass(slots=True)
class CompiledMjml:
    html: str
    """Compiled HTML with the Jinja tags restored, ready for the HTML Jinja environment."""
    protected_html: str
    """The same with placeholders still in: what the plain-text part is derived from."""
    tokens: list[str]
    inlined_css: str = ""
    rust_escapes: list[RustEscape] = field(default_factory=list)
    lost_tokens: list[tuple[int, str]] = field(default_factory=list)
    """(source line, Jinja tag) that the MJML compilation dropped or duplicated."""

    def restore(self, text: str) -> str:
        return restore_jinja(text, self.tokens)


def protect_jinja(source: str) -> tuple[str, list[str], list[int]]:
    """Swap every Jinja tag for `__jinja_N__`; returns the text, the tags and their source lines."""
    tokens: list[str] = []
    lines: list[int] = []

    def swap(match: re.Match[str]) -> str:
        tokens.append(match.group(0))
        lines.append(source.count("\n", 0, match.start()) + 1)
        return f"__jinja_{len(tokens) - 1}__"

    return JINJA_TOKEN.sub(swap, source), tokens, lines


def restore_jinja(text: str, tokens: list[str]) -> str:
    return PLACEHOLDER.sub(lambda m: tokens[int(m.group(1))], text)


def extract_inline_styles(source: str) -> tuple[str, str]:
    """Remove `<mj-style inline="inline">` blocks (keeping line count) and return their CSS."""
    css: list[str] = []

    def take(match: re.Match[str]) -> str:
        css.append(match.group(1).strip())
        return "\n" * match.group(0).count("\n")

    return INLINE_STYLE.sub(take, source), "\n".join(css)


_ATTRIBUTE = re.compile(r'([\w:.-]+)="((?:[^"\\]|\\.)*)"')


def find_rust_escapes(html: str) -> list[tuple[str, str]]:
    """(attribute name, raw value) of each attribute value holding a Rust escape sequence."""
    found: list[tuple[str, str]] = []
    for tag in _TAG.finditer(html):
        for attribute in _ATTRIBUTE.finditer(tag.group(0)):
            if RUST_ESCAPE.search(attribute.group(2)):
                found.append((attribute.group(1), attribute.group(2)))
    return found


_REPAIRS = {"\\n": " ", "\\r": " ", "\\t": " ", '\\"': "&quot;"}


def repair_rust_escapes(html: str) -> str:
    def fix_escape(esc: re.Match[str]) -> str:
        text = esc.group(0)
        if text.startswith("\\u{"):
            return f"&#{int(text[3:-1], 16)};"
        return _REPAIRS[text]

    return _TAG.sub(lambda tag: RUST_ESCAPE.sub(fix_escape, tag.group(0)), html)


_UNESCAPE = {"\\n": "\n", "\\r": "\r", "\\t": "\t", '\\"': '"'}


def _locate_escape(source: str, name: str, value: str) -> int | None:
    """The source line of an escaped attribute: the original value, else its first words."""
    original = RUST_ESCAPE.sub(
        lambda m: chr(int(m.group(0)[3:-1], 16)) if m.group(0).startswith("\\u{") else _UNESCAPE[m.group(0)], value
    )
    position = source.find(f'{name}="{original}"')
    if position < 0:
        for probe in [w.strip() for w in RUST_ESCAPE.sub("\n", value).split("\n") if w.strip()][:3]:
            position = source.find(probe)
            if position >= 0:
                break
    return source.count("\n", 0, position) + 1 if position >= 0 else None


def _mrml_line(message: str, source: str) -> int | None:
    match = _MRML_POSITION.search(message)
    if not match:
        return None
    return source.encode()[: int(match.group(1))].count(b"\n") + 1


def compile_mjml(
    source: str,
    *,
    lang: str | None = None,
    include_loader: Callable[[str], str] | None = None,
    line_offset: int = 0,
) -> CompiledMjml:
    """Compile MJML (with Jinja in it) to HTML; raises MjmlCompileError if MRML refuses it.

    `line_offset` is added to every line reported (the body's first line in its file, minus one).
    """
    protected, tokens, token_lines = protect_jinja(source)
    without_inline, css = extract_inline_styles(protected)
    if lang and re.search(r"<mjml(?![^>]*\blang=)", without_inline):
        without_inline = re.sub(r"<mjml\b", f'<mjml lang="{lang}"', without_inline, count=1)
    try:
        html = mjml.mjml2html(without_inline, fonts={}, include_loader=include_loader)
    except ValueError as exc:
        line = _mrml_line(str(exc), without_inline)
        raise MjmlCompileError(f"invalid MJML: {exc}", None if line is None else line + line_offset) from None
    escapes = [
        RustEscape(None if (ln := _locate_escape(source, name, value)) is None else ln + line_offset, f'{name}="{value[:60]}"')
        for name, value in find_rust_escapes(html)
    ]
    if escapes:
        html = repair_rust_escapes(html)
    if css:
        inliner = css_inline.CSSInliner(
            inline_style_tags=False, keep_style_tags=True, keep_link_tags=True,
            load_remote_stylesheets=False, extra_css=css,
        )
        html = inliner.inline(html)
    counts: dict[int, int] = {}
    for match in PLACEHOLDER.finditer(html):
        counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + 1
    lost = [(token_lines[i] + line_offset, tok) for i, tok in enumerate(tokens) if counts.get(i, 0) != 1]
    return CompiledMjml(
        html=restore_jinja(html, tokens), protected_html=html, tokens=tokens,
        inlined_css=css, rust_escapes=escapes, lost_tokens=lost,
    )
