"""Templates run sandboxed: a template that reaches for Python internals (the classic
`cycler.__init__.__globals__.os`) fails the check with file:line and runs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.sandbox import SandboxedEnvironment

from flows.cli import main
from templates.checks import check_templates
from templates.environment import html_env, text_env

ESCAPES = {
    "globals": "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "subscript": "{{ cycler['__init__']['__globals__']['os'].system('touch MARKER') }}",
    "attr filter": "{{ (cycler|attr('__init__')|attr('__globals__'))['os'].system('touch MARKER') }}",
    "format": "{{ '{0.__init__.__globals__[os].system}'.format(cycler) }}",
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
}


def write_sms(root: Path, body: str) -> Path:
    folder = root / "points_expiring"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sms_evil.en.sms.txt"
    path.write_text(f"---\npurpose: transactional\n---\nHi {{{{ first_name }}}}\n{body}\n", encoding="utf-8")
    return path


def test_every_template_environment_is_sandboxed() -> None:
    assert isinstance(html_env(), SandboxedEnvironment) and isinstance(text_env(), SandboxedEnvironment)


@pytest.mark.parametrize("name", list(ESCAPES))
def test_a_template_escaping_to_python_fails_the_check_at_its_line_and_runs_nothing(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"
    path = write_sms(tmp_path / "lib", ESCAPES[name].replace("MARKER", str(marker)))
    problems = check_templates(tmp_path / "lib", locales=["en"])
    assert not marker.exists(), "the template ran a shell command"
    located = [p for p in problems if p.path.endswith("sms_evil.en.sms.txt")]
    assert located, problems
    assert located[0].line == 5, located[0]
    assert "unsafe" in located[0].message.lower() or "not allowed" in located[0].message.lower(), located[0].message


def test_loyalflow_check_templates_reports_the_escape_and_exits_nonzero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "MARKER"
    path = write_sms(tmp_path / "lib", ESCAPES["globals"].replace("MARKER", str(marker)))
    with pytest.raises(SystemExit) as exited:
        main(["check-templates", "--root", str(tmp_path / "lib")])
    out, err = capsys.readouterr()
    assert exited.value.code == 1 and not marker.exists()
    assert f"{path.relative_to(tmp_path)}:5:" in out + err and "Traceback" not in out + err


def test_the_dict_fast_path_answers_as_the_sandbox_does() -> None:
    """templates.environment takes a plain dict's item at once; every answer must be the sandbox's own."""
    from jinja2 import StrictUndefined, UndefinedError
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    reference = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
    ctx = {"member": {"first_name": "Ada", "items": "a key named like a method", "tier": {"name": "Gold"}},
           "points": 1200, "nested": [{"code": "X1"}]}
    for source in ("{{ member.first_name }} {{ member.tier.name }}", "{{ member['items'] }}",
                   "{{ member.items() | list | length }}", "{{ nested[0].code }}", "{{ member.get('first_name') }}",
                   "{{ points.real }}"):
        expected = reference.from_string(source).render(ctx)
        assert html_env().from_string(source).render(ctx) == expected, source
    for source in ("{{ member.missing }}", "{{ member.tier.missing }}"):
        with pytest.raises(UndefinedError):
            html_env().from_string(source).render(ctx)
    for source in ("{{ member.update }}", "{{ member.items.__self__ }}"):  # a mutator, an internal: refused
        with pytest.raises(SecurityError):
            reference.from_string(source).render(ctx)
        with pytest.raises(SecurityError):
            html_env().from_string(source).render(ctx)
