"""`loyalflow check` warns where a journey's timing cannot be honoured by a runtime that passes every
minute, defers quiet hours and lands `at=` on the member's local day; the shipped journeys warn of nothing."""

from __future__ import annotations

from pathlib import Path

from journeys.check import check_journeys
from templates import TemplateLibrary

HEADER = "from journeys.dsl import *\nfrom datetime import timedelta\n"

TIMING = {
    "tight.py": 'JOURNEY = Journey(name="tight", description="", version=1, purpose="transactional",\n'
                '    audience="new_members", stale=timedelta(seconds=30), steps=[\n'
                '        send(email("welcome/email_welcome")),\n'
                '    ])\n',
    "late_local.py": 'JOURNEY = Journey(name="late_local", description="", version=1, purpose="transactional",\n'
                     '    audience="points_expiring", occurrence_key="batch_id", stale=after("expires_at"), steps=[\n'
                     '        wait_until(before("expires_at", hours=6), at="10:00"),\n'
                     '        send(email("points_expiring/email_7d")),\n'
                     '    ])\n',
    "quiet_sms.py": 'JOURNEY = Journey(name="quiet_sms", description="", version=1, purpose="transactional",\n'
                    '    audience="points_expiring", occurrence_key="batch_id", steps=[\n'
                    '        wait_until(before("expires_at", days=1), at="22:30"),\n'
                    '        send(sms("points_expiring/sms_1d")),\n'
                    '    ])\n',
    "Bad-Name.py": 'JOURNEY = Journey(name="Bad-Name", description="", version=1, purpose="transactional",\n'
                   '    audience="new_members", steps=[send(email("welcome/email_welcome"))])\n',
}


def test_timing_the_runtime_cannot_honour_is_a_warning_at_the_step(tmp_path: Path) -> None:
    files = []
    for name, body in TIMING.items():
        path = tmp_path / name
        path.write_text(HEADER + body, encoding="utf-8")
        files.append(path)
    problems = check_journeys(files, library=TemplateLibrary.load())
    warnings = {(Path(p.path).name, p.line): p.message for p in problems if p.warning}
    errors = [p for p in problems if not p.warning]
    assert warnings[("tight.py", 5)].startswith("journey 'tight': this send goes stale 0:00:30 after enrollment")
    assert "for members in some zones the local time falls after the deadline" in warnings[("late_local.py", 6)]
    assert "sms at 22:30 local is inside its quiet hours (21:00-08:00): it will be deferred to 08:00" \
        in warnings[("quiet_sms.py", 6)]
    assert len(warnings) == 3
    assert [Path(p.path).name for p in errors] == ["Bad-Name.py"]
    assert "journey name 'Bad-Name' must be lower-case letters" in errors[0].message
    shown = [str(p) for p in problems if p.warning and Path(p.path).name == "tight.py"]
    assert shown == [f"{tmp_path / 'tight.py'}:5: warning: {warnings[('tight.py', 5)]}"]


def test_the_shipped_journeys_warn_of_nothing() -> None:
    assert [str(p) for p in check_journeys(library=TemplateLibrary.load())] == []


def test_check_shows_warnings_and_still_passes(tmp_path: Path) -> None:
    import os
    import subprocess

    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "quiet_sms.py").write_text(HEADER + TIMING["quiet_sms.py"], encoding="utf-8")
    env = {**os.environ, "LOYALFLOW_JOURNEYS_PATH": str(folder), "COLUMNS": "200"}
    done = subprocess.run(["loyalflow", "check"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "quiet_sms.py:6: warning: journey 'quiet_sms': sms at 22:30 local is inside its quiet hours" in \
        " ".join(done.stderr.split())
    assert "1 warning(s) above" in done.stdout
