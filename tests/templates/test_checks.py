"""`check_templates` reports each problem with file:line, and the real library has none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from templates import TemplateError
from templates.checks import check_templates
from templates.library import TemplateLibrary
from templates.problems import Problem
from tests.templates.library_builder import EMAIL, MakeLibrary

J = "points_expiring"  # a journey with a sample context (points, balance, expires_at, ...)


def _line_of(root: Path, name: str, needle: str) -> int:
    lines = (root / name).read_text(encoding="utf-8").split("\n")
    return next(i + 1 for i, line in enumerate(lines) if needle in line)


def _only(problems: list[Problem], name: str) -> list[Problem]:
    return [p for p in problems if p.path.endswith(name)]


def test_the_real_library_has_no_problems(library: TemplateLibrary) -> None:
    assert check_templates(library) == []


def test_a_clean_library_is_clean(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/email_x.en.mjml": EMAIL})
    assert check_templates(root) == []


def test_jinja_syntax_error(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/email_x.en.mjml": EMAIL.replace("you have {{ points|number }}", "you have {{ points|number }")})
    [problem] = check_templates(root)
    assert problem.line == _line_of(root, f"{J}/email_x.en.mjml", "you have {{ points|number }")
    assert "Jinja syntax error" in problem.message
    assert str(problem).startswith(f"{problem.path}:{problem.line}: ")


def test_jinja_syntax_error_in_the_subject(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/email_x.en.mjml": EMAIL.replace("subject: Hello {{ first_name", "subject: Hello {{ first_name }")})
    [problem] = check_templates(root)
    assert (problem.line, "Jinja syntax error" in problem.message) == (3, True)


def test_missing_variable(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/email_x.en.mjml": EMAIL.replace("<p>Hi {{ first_name }}", "<p>Hi {{ nickname }}")})
    problems = check_templates(root)
    assert problems and {p.line for p in problems} == {_line_of(root, f"{J}/email_x.en.mjml", "{{ nickname }}")}
    assert "missing variable: 'nickname' is undefined" in problems[0].message


def test_missing_attribute_in_sms(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/sms_x.en.sms.txt": "---\npurpose: transactional\n---\n\nYour {{ program.tier }} status\n"})
    [problem] = check_templates(root)
    assert problem.line == 5 and "has no attribute 'tier'" in problem.message


def test_invalid_mjml_unknown_element(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/email_x.en.mjml": EMAIL.replace("<mj-column>", "<mj-colum>").replace("</mj-column>", "</mj-colum>")})
    problems = check_templates(root)
    line = _line_of(root, f"{J}/email_x.en.mjml", "<mj-colum>")
    assert Problem(problems[0].path, line, "invalid MJML: unknown element <mj-colum>") in problems


def test_invalid_mjml_misplaced_and_unclosed(make_library: MakeLibrary) -> None:
    broken = EMAIL.replace("      </mj-column>\n", "")
    root = make_library({f"{J}/email_x.en.mjml": broken})
    problems = check_templates(root)
    assert any("</mj-section> closes </mj-column>" in p.message
               and p.line == _line_of(root, f"{J}/email_x.en.mjml", "</mj-section>") for p in problems)


def test_mjml_the_compiler_refuses(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/email_x.en.mjml": EMAIL.replace("<mjml>", "<html>", 1)})
    problems = check_templates(root)
    assert problems and all(p.path.endswith("email_x.en.mjml") for p in problems)
    assert any("invalid MJML" in p.message for p in problems)


def test_jinja_block_between_mjml_elements_is_lost(make_library: MakeLibrary) -> None:
    looped = EMAIL.replace("    <mj-section>\n", "    {% for i in [1] %}\n    <mj-section>\n", 1).replace(
        "    </mj-section>\n", "    </mj-section>\n    {% endfor %}\n", 1)
    root = make_library({f"{J}/email_x.en.mjml": looped})
    problems = check_templates(root)
    assert any("lost in MJML compilation" in p.message
               and p.line == _line_of(root, f"{J}/email_x.en.mjml", "{% for i in [1] %}") for p in problems)
    with pytest.raises(TemplateError, match="lost in MJML compilation"):
        TemplateLibrary.load(root)


def test_rust_escaped_attribute_names_the_template(make_library: MakeLibrary) -> None:
    escaped = EMAIL.replace("<p>Hi {{ first_name }}", '<p style="color: red;\n             margin: 0">Hi {{ first_name }}')
    root = make_library({f"{J}/email_x.en.mjml": escaped})
    [problem] = check_templates(root)
    assert problem.path.endswith(f"{J}/email_x.en.mjml")
    assert problem.line == _line_of(root, f"{J}/email_x.en.mjml", '<p style="color: red;')
    assert "Rust-escaped" in problem.message
    rendered = TemplateLibrary.load(root).render(J, "email_x", "en", _ctx())
    assert "\\n" not in rendered.html and 'style="color: red;' in rendered.html  # repaired when sending


def _ctx() -> dict[str, object]:
    from templates.samples import sample_context

    return sample_context(J, "en")


def test_segment_budget_exceeded(make_library: MakeLibrary) -> None:
    text = "---\npurpose: transactional\nmax_segments: 1\n---\n" + "Your points {{ points }} " + "x" * 150 + "\n"
    root = make_library({f"{J}/sms_x.en.sms.txt": text})
    [problem] = check_templates(root)
    assert problem.line == 3 and "SMS is 2 segments (GSM-7" in problem.message and "budget of 1" in problem.message


def test_segment_budget_exceeded_only_by_an_emoji_name(make_library: MakeLibrary) -> None:
    text = "---\npurpose: transactional\nmax_segments: 1\n---\nHi {{ first_name }}, " + "x" * 50 + "\n"
    root = make_library({f"{J}/sms_x.en.sms.txt": text})
    [problem] = check_templates(root)
    assert problem.line == 3 and "UCS-2" in problem.message and "first_name=" in problem.message


def test_payload_too_large(make_library: MakeLibrary) -> None:
    spec = {"purpose": "transactional", "title": "Hi {{ first_name }}", "body": "y" * 4100, "deep_link": None, "data": {}}
    root = make_library({f"{J}/push_x.en.push.json": json.dumps(spec, indent=2)})
    [problem] = check_templates(root)
    assert problem.path.endswith("push_x.en.push.json") and "over FCM's 4096" in problem.message


def test_missing_locale_with_no_fallback(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/email_x.fr.mjml": EMAIL})
    problems = check_templates(root)
    missing = sorted(p.message for p in problems)
    assert len(missing) == 4  # en, de, es and ja; fr-CA falls back to fr
    assert all(p.path.endswith(f"{J}/email_x") for p in problems)
    assert "no file for locale 'de' and no fallback (tried de, en)" in missing[0]


def test_marketing_needs_unsubscribe_preferences_and_stop(make_library: MakeLibrary) -> None:
    root = make_library({
        f"{J}/email_x.en.mjml": EMAIL.replace('<a href="{{ links.unsubscribe_url }}">Unsubscribe</a>', ""),
        f"{J}/sms_x.en.sms.txt": "---\npurpose: marketing\n---\n{{ points }} points expire soon\n",
        f"{J}/sms_y.en.sms.txt": "---\npurpose: transactional\n---\n{{ points }} points expire soon\n",
    })
    messages = {(Path(p.path).name, p.message) for p in check_templates(root)}
    assert ("email_x.en.mjml", "marketing email has no unsubscribe link ({{ links.unsubscribe_url }})") in messages
    assert any(name == "sms_x.en.sms.txt" and "opt-out line" in m for name, m in messages)
    assert not any(name == "sms_y.en.sms.txt" for name, _ in messages)
    assert len(messages) == 2


def test_bad_front_matter_and_purpose(make_library: MakeLibrary) -> None:
    root = make_library({
        f"{J}/sms_a.en.sms.txt": "---\npurpose marketing\n---\nhi\n",
        f"{J}/sms_b.en.sms.txt": "---\npurpose: promo\n---\nhi\n",
        f"{J}/push_c.en.push.json": '{\n  "purpose": "marketing",\n  "title": "x",\n',
    })
    found = {(Path(p.path).name, p.line) for p in check_templates(root)}
    assert {("sms_a.en.sms.txt", 2), ("sms_b.en.sms.txt", 2), ("push_c.en.push.json", 4)} <= found


def test_bad_file_name_is_reported(make_library: MakeLibrary) -> None:
    root = make_library({f"{J}/Email X.mjml": EMAIL})
    [problem] = check_templates(root)
    assert "file name must be <step>.<locale>.mjml" in problem.message
