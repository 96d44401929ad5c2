"""The template check behind `loyalflow check`: render every template in every locale with sample data.

Each problem names the file and line: Jinja syntax, a missing variable, invalid MJML, a Jinja tag
lost by the MJML compiler, Rust-escaped attribute values, a segment budget exceeded, a push payload
too large, a missing locale with no fallback, and a marketing message without its unsubscribe and
preference links (email) or its STOP line (SMS).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from templates.errors import TemplateError
from templates.frontmatter import FrontMatterError, parse
from templates.compiled import CompiledSms, compile_email, compile_file
from templates.files import TemplateFile, display_path
from templates.library import TemplateLibrary
from templates.locales import SUPPORTED_LOCALES, fallback_chain
from templates.mjml_check import check_mjml_structure
from templates.problems import Problem
from templates.rendered import RenderedEmail, RenderedSms
from templates.samples import HOSTILE_NAMES, sample_context

ContextFactory = Callable[[str, str], dict[str, Any]]


def _problem(exc: TemplateError) -> Problem:
    return Problem(exc.path, exc.line, exc.message)


def _email_structure(file: TemplateFile) -> list[Problem]:
    """Every structural MJML problem of a file (compilation stops at the first)."""
    try:
        doc = parse(file.path.read_text(encoding="utf-8"))
    except (FrontMatterError, UnicodeDecodeError):
        return []  # reported by compilation
    return [Problem(file.name, line, message) for line, message in check_mjml_structure(doc.body, doc.body_line - 1)]


def _compile_problems(file: TemplateFile) -> list[Problem]:
    problems: list[Problem] = []
    if file.channel == "email":
        problems.extend(_email_structure(file))
        try:
            loose = compile_email(file, strict=False)
        except TemplateError as exc:
            return problems + ([] if problems and "invalid MJML" in exc.message else [_problem(exc)])
        for line, token in loose.mjml.lost_tokens:
            problems.append(Problem(file.name, line, f"Jinja tag {token!r} lost in MJML compilation "
                                                      "(keep Jinja inside text and attribute values)"))
        for escape in loose.mjml.rust_escapes:
            problems.append(Problem(file.name, escape.line, "MJML compiler wrote a Rust-escaped attribute value "
                                                             f"({escape.attribute}…): keep attribute values on one line"))
        return problems
    try:
        compile_file(file)
    except TemplateError as exc:
        problems.append(_problem(exc))
    return problems


def _content_problems(file: TemplateFile, compiled: Any, rendered: Any, context: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    if compiled.purpose != "marketing":
        return problems
    if isinstance(rendered, RenderedEmail):
        links = context.get("links") or {}
        for key, label in (("unsubscribe_url", "unsubscribe"), ("preferences_url", "preference-centre")):
            url = links.get(key)
            if url and f'href="{url}"' not in rendered.html.replace("&amp;", "&"):
                problems.append(Problem(file.name, None, f"marketing email has no {label} link ({{{{ links.{key} }}}})"))
    elif isinstance(rendered, RenderedSms) and "STOP" not in rendered.text:
        problems.append(Problem(file.name, None, "marketing SMS has no opt-out line (\"Reply STOP to opt out\", localised)"))
    return problems


def check_templates(
    lib_or_root: TemplateLibrary | str | os.PathLike[str] | None = None,
    *,
    locales: Iterable[str] = SUPPORTED_LOCALES,
    context_for: ContextFactory | None = None,
) -> list[Problem]:
    """Every problem of every template in every locale (empty when all is well); never raises for a template."""
    try:
        library = lib_or_root if isinstance(lib_or_root, TemplateLibrary) else TemplateLibrary.load(lib_or_root, eager=False)
    except TemplateError as exc:
        return [_problem(exc)]
    make_context = context_for or (lambda journey, locale: sample_context(journey, locale))
    problems: list[Problem] = []
    broken: set[Path] = set()
    for journey, step in library.templates():
        files = library.files[(journey, step)]
        channels = {f.channel for f in files.values()}
        if len(channels) > 1:
            problems.append(Problem(display_path(library.root / journey), None,
                                    f"{journey}/{step} has files for several channels: {', '.join(sorted(channels))}"))
            continue
        for file in files.values():
            found = _compile_problems(file)
            if found:
                problems.extend(found)
                broken.add(file.path)
        purposes = set()
        for locale in dict.fromkeys([*locales, *files]):
            chain = fallback_chain(locale, library.default_locale)
            file = next((files[c] for c in chain if c in files), None)
            if file is None:
                problems.append(Problem(display_path(library.root / journey / step), None,
                                        f"{journey}/{step}: no file for locale {locale!r} and no fallback "
                                        f"(tried {', '.join(chain)})"))
                continue
            if file.path in broken:
                continue
            compiled = library.compiled(file)
            purposes.add(compiled.purpose)
            names = ["Camille", None, *HOSTILE_NAMES] if isinstance(compiled, CompiledSms) else ["Camille", None]
            for first_name in names:
                context = make_context(journey, locale)
                context["first_name"] = first_name
                try:
                    rendered = library.render(journey, step, locale, context)
                except TemplateError as exc:
                    problem = _problem(exc)
                    detail = problem.message if first_name == "Camille" else f"{problem.message} (first_name={first_name!r})"
                    problems.append(Problem(problem.path, problem.line, detail))
                    break
                if first_name == "Camille":
                    problems.extend(_content_problems(file, compiled, rendered, context))
        if len(purposes) > 1:
            problems.append(Problem(display_path(library.root / journey), None,
                                    f"{journey}/{step}: locales disagree on purpose ({', '.join(sorted(purposes))})"))
    return list(dict.fromkeys(problems))


__all__ = ["check_templates", "Problem"]
