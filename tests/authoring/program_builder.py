"""A marketer's own program in a folder outside the repository: one SQL audience, one journey, its
templates in every shipped locale; and a small database with known figures (member 42: 978 points)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import Engine

from audiences.db import session_scope
from channels.consent import record_consent
from templates.locales import SUPPORTED_LOCALES
from tests.audiences import builders as b

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)

AUDIENCE_SQL = """\
-- description: Active members holding at least min_points points
-- recipient: member
-- param min_points: int = 100
-- column tier_code: str
-- column balance: int
-- column last_earned_at: datetime
SELECT m.id AS recipient_id,
       t.code AS tier_code,
       SUM(p.points) AS balance,
       MAX(p.occurred_at) AS last_earned_at
FROM members m
JOIN tiers t ON t.id = m.tier_id
JOIN points_ledger p ON p.member_id = m.id AND p.occurred_at <= :now
WHERE m.status = 'active'
GROUP BY m.id, t.code
HAVING SUM(p.points) >= :min_points
"""

JOURNEY = """\
from journeys.dsl import Journey, email, send

JOURNEY = Journey(
    name="balance_news",
    description="Tell members their balance.",
    version=1,
    purpose="transactional",
    audience="points_balance",
    audience_params={"min_points": 500},
    schedule="0 9 * * *",
    steps=[send(email("balance_news/email_balance"))],
)
"""

EMAIL = """\
---
purpose: transactional
subject: {{ first_name or 'Hello' }}, your balance
preheader: Your {{ tier_code }} balance
---
<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>You hold {{ balance }} points as a {{ tier_code }} member{{ extra }}.</mj-text>
        <mj-text>Last earned {{ last_earned_at|date }}. <a href="{{ links.app_url }}">{{ program.name }}</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def write_program(root: Path, *, template: str = EMAIL) -> Path:
    (root / "audiences").mkdir(parents=True)
    (root / "journeys").mkdir()
    (root / "audiences" / "points_balance.sql").write_text(AUDIENCE_SQL, encoding="utf-8")
    (root / "journeys" / "balance_news.py").write_text(JOURNEY, encoding="utf-8")
    folder = root / "templates" / "balance_news"
    folder.mkdir(parents=True)
    for locale in SUPPORTED_LOCALES:
        (folder / f"email_balance.{locale}.mjml").write_text(template.replace("{{ extra }}", ""), encoding="utf-8")
    return root


def fill(engine: Engine) -> None:
    """Member 42 (gold, 978 points), member 43 (silver, 300: under min_points), member 44 (closed)."""
    b.reset_ids()
    with session_scope(engine) as s:
        tiers = b.tiers(s)
        start = NOW - timedelta(days=200)
        m42 = b.member(s, 42, enrolled_at=start, tier=tiers["gold"], locale="de", zone="Europe/Berlin")
        b.earn(s, m42, 1200, NOW - timedelta(days=40), None)
        b.spend(s, m42, 222, NOW - timedelta(days=10))
        m43 = b.member(s, 43, enrolled_at=start, tier=tiers["silver"])
        b.earn(s, m43, 300, NOW - timedelta(days=20), None)
        m44 = b.member(s, 44, enrolled_at=start, tier=tiers["gold"], status=b.MemberStatus.closed)
        b.earn(s, m44, 5000, NOW - timedelta(days=20), None)
        for m in (m42, m43):
            record_consent(s, recipient_kind="member", recipient_id=m.id, channel="email", purpose="transactional",
                           action="opt_in", source="form", occurred_at=start)


def loyalflow(*args: str, program: Path, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, pointed at the program by LOYALFLOW_PROGRAM_DIR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALFLOW_", "PREFECT_API"))}
    env.update({"LOYALFLOW_PROGRAM_DIR": str(program), "LOYALFLOW_DATABASE_URL": url, "COLUMNS": "200",
                "PYTHONPATH": str(REPO), "LOYALFLOW_DELIVERY_MODE": "outbox",
                "LOYALFLOW_OUTBOX_DIR": str(cwd / "outbox")})
    code = "import sys; from flows.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
