"""Compiled forms of one template file: MJML compiled to HTML once (per template and locale), Jinja
parsed once, so rendering for a recipient is only the Jinja personalisation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template, TemplateSyntaxError

from templates.environment import html_env, text_env
from templates.errors import (
    PushPayloadTooLarge,
    SegmentBudgetExceeded,
    TemplateError,
)
from templates.files import TemplateFile
from templates.frontmatter import Document, FrontMatterError, parse
from templates.jinja_tools import compile_template, describe, error_line
from templates.mjml_check import check_mjml_structure
from templates.mjml_compiler import CompiledMjml, MjmlCompileError, compile_mjml
from templates.plaintext import html_to_text
from templates.push import FCM_MAX_PAYLOAD_BYTES, payload_size
from templates.rendered import RenderedEmail, RenderedPush, RenderedSms
from templates.sms import count_segments, normalize_spaces
from templates.vocabulary import PURPOSES


@dataclass(slots=True)
class CompiledEmail:
    file: TemplateFile
    purpose: str
    subject: Template
    preheader: Template
    html: Template
    mjml: CompiledMjml
    body_source: str
    """The Jinja+MJML body, padded to file lines: re-rendered only to locate an error's line."""
    plain: Template
    """Subject, preheader and text part in one template: one render instead of three per recipient."""

    def render(self, context: dict[str, Any]) -> RenderedEmail:
        try:
            subject, preheader, text = self.plain.render(context).split(_PART, 2)
            context["preheader"] = preheader = squash(preheader)
            html = self.html.render(context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a TemplateError with a line
            raise self._locate(exc, context) from None
        return RenderedEmail(subject=squash(subject), preheader=preheader, html=html, text=text)

    def _locate(self, exc: Exception, context: dict[str, Any]) -> TemplateError:
        """Re-render each part from its source so Jinja reports the failing line of the file."""
        name = self.file.name
        try:
            _run(self.subject, context, name)
            context["preheader"] = squash(_run(self.preheader, context, name))
            compile_template(html_env(), self.body_source, name).render(context)
        except TemplateError as located:
            return located
        except Exception as source_exc:  # noqa: BLE001
            return TemplateError(name, error_line(source_exc, name), describe(source_exc))
        return TemplateError(name, None, describe(exc))


_PART = "\x1e"  # ASCII record separator: never in a template, never produced by a filter


def _plain_source(subject: str, preheader: str, text: str) -> str:
    """`{% set %}` captures the preheader so the text part can use it, as the HTML does."""
    return f"{{% set preheader %}}{preheader}{{% endset %}}{subject}{_PART}{{{{ preheader }}}}{_PART}{text}"


@dataclass(slots=True)
class CompiledSms:
    file: TemplateFile
    purpose: str
    body: Template
    max_segments: int
    budget_line: int | None

    def render(self, context: dict[str, Any]) -> RenderedSms:
        text = normalize_spaces(_run(self.body, context, self.file.name)).strip()
        count = count_segments(text)
        if count.segments > self.max_segments:
            raise SegmentBudgetExceeded(
                self.file.name, self.budget_line,
                f"SMS is {count.segments} segments ({count.encoding}, {count.units} units), "
                f"over its budget of {self.max_segments}",
            )
        return RenderedSms(text=text, encoding=count.encoding, segments=count.segments)


@dataclass(slots=True)
class CompiledPush:
    file: TemplateFile
    purpose: str
    title: Template
    body: Template
    deep_link: Template | None
    data: dict[str, Template] = field(default_factory=dict)

    def render(self, context: dict[str, Any]) -> RenderedPush:
        name = self.file.name
        link = _run(self.deep_link, context, name).strip() if self.deep_link is not None else ""
        push = RenderedPush(
            title=squash(_run(self.title, context, name)),
            body=squash(_run(self.body, context, name)),
            deep_link=link or None,
            data={key: _run(t, context, name) for key, t in self.data.items()},
        )
        size = payload_size(push)
        if size > FCM_MAX_PAYLOAD_BYTES:
            raise PushPayloadTooLarge(name, None, f"push payload is {size} bytes, over FCM's {FCM_MAX_PAYLOAD_BYTES}")
        return push


Compiled = CompiledEmail | CompiledSms | CompiledPush


_ASCII_SPACE = re.compile(r"[ \t\r\n\f\v]+")


def squash(text: str) -> str:
    """One line, runs of ASCII whitespace made one space; no-break spaces from Babel are kept."""
    return _ASCII_SPACE.sub(" ", text).strip()


def _run(template: Template, context: dict[str, Any], name: str) -> str:
    try:
        return template.render(context)
    except TemplateError:
        raise
    except Exception as exc:  # noqa: BLE001 - named, located, one line
        raise TemplateError(name, error_line(exc, name), describe(exc)) from None


def _jinja(env_text: bool, source: str, name: str, line: int = 1) -> Template:
    env = text_env() if env_text else html_env()
    try:
        return compile_template(env, pad(line) + source, name)
    except TemplateSyntaxError as exc:
        raise TemplateError(name, exc.lineno, describe(exc)) from None


def pad(line: int) -> str:
    """A Jinja comment spanning `line - 1` lines: what follows is on file line `line`, and renders nothing."""
    return "{#" + "\n" * (line - 1) + "#}" if line > 1 else ""


def _purpose(value: str | None, name: str, line: int | None) -> str:
    if value not in PURPOSES:
        raise TemplateError(name, line, f"purpose must be one of {', '.join(PURPOSES)}, not {value!r}")
    return value


def _document(file: TemplateFile) -> Document:
    try:
        return parse(file.path.read_text(encoding="utf-8"))
    except FrontMatterError as exc:
        raise TemplateError(file.name, exc.line, str(exc)) from None
    except UnicodeDecodeError as exc:
        raise TemplateError(file.name, None, f"not UTF-8: {exc.reason}") from None


def _inject_preview(body: str) -> str:
    """Add `<mj-preview>{{ preheader }}</mj-preview>` (no new lines, so line numbers hold)."""
    if "<mj-preview" in body:
        return body
    preview = "<mj-preview>{{ preheader }}</mj-preview>"
    if re.search(r"<mj-head\b[^>]*>", body):
        return re.sub(r"(<mj-head\b[^>]*>)", lambda m: m.group(1) + preview, body, count=1)
    return re.sub(r"(<mjml\b[^>]*>)", lambda m: m.group(1) + f"<mj-head>{preview}</mj-head>", body, count=1)


def compile_email(file: TemplateFile, *, strict: bool = True) -> CompiledEmail:
    """Compile one email file. `strict` raises on MJML structure problems and lost Jinja tags."""
    name = file.name
    doc = _document(file)
    purpose = _purpose(doc.get("purpose"), name, doc.fields["purpose"].line if "purpose" in doc.fields else None)
    for key in ("subject", "preheader"):
        if key not in doc.fields:
            raise TemplateError(name, 1, f"front matter has no `{key}:`")
    subject = _jinja(True, doc.fields["subject"].value, name, doc.fields["subject"].line)
    preheader = _jinja(True, doc.fields["preheader"].value, name, doc.fields["preheader"].line)
    body = _inject_preview(doc.body)
    body_source = pad(doc.body_line) + body
    _jinja(False, body, name, doc.body_line)  # syntax errors with file lines, before MJML sees it
    if strict:
        for line, message in check_mjml_structure(body, doc.body_line - 1):
            raise TemplateError(name, line, message)
    try:
        compiled = compile_mjml(body, lang=file.locale, line_offset=doc.body_line - 1)
    except MjmlCompileError as exc:
        raise TemplateError(name, exc.line, str(exc)) from None
    if strict and compiled.lost_tokens:
        line, token = compiled.lost_tokens[0]
        raise TemplateError(name, line, f"Jinja tag {token!r} lost in MJML compilation (keep Jinja inside text and attributes)")
    html = _jinja(False, compiled.html, name)
    text_source = compiled.restore(html_to_text(compiled.protected_html))
    fields = doc.fields
    plain = _jinja(True, _plain_source(fields["subject"].value, fields["preheader"].value, text_source), name)
    return CompiledEmail(file, purpose, subject, preheader, html, compiled, body_source, plain)


def compile_sms(file: TemplateFile) -> CompiledSms:
    name = file.name
    doc = _document(file)
    purpose = _purpose(doc.get("purpose"), name, doc.fields["purpose"].line if "purpose" in doc.fields else None)
    budget = doc.fields.get("max_segments")
    try:
        max_segments = int(budget.value) if budget else 1
    except ValueError:
        raise TemplateError(name, budget.line if budget else None, f"max_segments is not a number: {budget.value!r}") from None
    if max_segments < 1:
        raise TemplateError(name, budget.line if budget else None, "max_segments must be at least 1")
    return CompiledSms(file, purpose, _jinja(True, doc.body.strip("\n"), name, doc.body_line + _leading_newlines(doc.body)),
                       max_segments, budget.line if budget else None)


def _leading_newlines(text: str) -> int:
    return len(text) - len(text.lstrip("\n"))


def _key_line(lines: list[str], key: str, start: int = 0) -> int:
    pattern = re.compile(r'"' + re.escape(key) + r'"\s*:')
    for index in range(start, len(lines)):
        if pattern.search(lines[index]):
            return index + 1
    return start + 1


def compile_push(file: TemplateFile) -> CompiledPush:
    name = file.name
    raw = file.path.read_text(encoding="utf-8")
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TemplateError(name, exc.lineno, f"invalid JSON: {exc.msg}") from None
    lines = raw.split("\n")
    if not isinstance(spec, dict):
        raise TemplateError(name, 1, "push template must be a JSON object")
    unknown = set(spec) - {"purpose", "title", "body", "deep_link", "data"}
    if unknown:
        key = sorted(unknown)[0]
        raise TemplateError(name, _key_line(lines, key), f"unknown key {key!r} (expected purpose, title, body, deep_link, data)")
    purpose = _purpose(spec.get("purpose"), name, _key_line(lines, "purpose"))
    for key in ("title", "body"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise TemplateError(name, _key_line(lines, key), f"`{key}` must be a non-empty string")
    link = spec.get("deep_link")
    if link is not None and not isinstance(link, str):
        raise TemplateError(name, _key_line(lines, "deep_link"), "`deep_link` must be a string or null")
    data = spec.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise TemplateError(name, _key_line(lines, "data"), "`data` must map names to strings (FCM data is strings only)")
    data_line = _key_line(lines, "data") - 1 if "data" in spec else 0
    return CompiledPush(
        file, purpose,
        title=_jinja(True, spec["title"], name, _key_line(lines, "title")),
        body=_jinja(True, spec["body"], name, _key_line(lines, "body")),
        deep_link=_jinja(True, link, name, _key_line(lines, "deep_link")) if link else None,
        data={k: _jinja(True, v, name, _key_line(lines, k, data_line)) for k, v in data.items()},
    )


def compile_file(file: TemplateFile, *, strict: bool = True) -> Compiled:
    if file.channel == "email":
        return compile_email(file, strict=strict)
    if file.channel == "sms":
        return compile_sms(file)
    return compile_push(file)
