"""Two workers run the same journey's flow against PostgreSQL at the same time: whichever way
they interleave (one refused by the run lock, or one after the other), nobody gets a step twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from journeys.models import Send, SendStatus
from tests.audiences import builders as b

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)

WORKER = """
import sys
from flows.runtime import quiet_prefect
quiet_prefect()
from journeys.locks import LockHeld
from flows.journey_flows import journey_tick
try:
    print(journey_tick("welcome", sys.argv[1], chunk_size=150)["sent"])
except LockHeld:
    print("refused: already running")
"""


def _members(engine: Engine, count: int) -> None:
    b.reset_ids()
    with Session(engine, expire_on_commit=False) as s:
        b.tiers(s)
        for i in range(1, count + 1):
            b.member(s, i, enrolled_at=NOW - timedelta(hours=1 + i % 50))
        s.commit()


def _run_two(engine: Engine, tmp_path: Path, script: str, timeout: int) -> list[tuple[str, str]]:
    """Two worker processes on the same database and outbox; both must succeed."""
    url = engine.url.render_as_string(hide_password=False)
    workers = []
    for n in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({"LOYALFLOW_DATABASE_URL": url, "LOYALFLOW_OUTBOX_DIR": str(tmp_path / "outbox"),
                    "PREFECT_HOME": str(tmp_path / f"prefect-{n}"), "DO_NOT_TRACK": "1",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
        workers.append(subprocess.Popen([sys.executable, "-c", script, NOW.isoformat()], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [w.communicate(timeout=timeout) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    return outputs


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_same_journey_no_duplicates(postgres_engine: Engine, tmp_path: Path) -> None:
    _members(postgres_engine, 800)
    outputs = _run_two(postgres_engine, tmp_path, WORKER, timeout=900)
    mails = list((tmp_path / "outbox" / "email").glob("*.eml"))
    with Session(postgres_engine) as s:
        sent = s.scalars(select(Send.id).where(Send.status == SendStatus.sent)).all()
        pairs = s.execute(select(Send.enrollment_id, Send.step_key, func.count()).group_by(
            Send.enrollment_id, Send.step_key)).all()
    assert len(sent) == 800 and len(mails) == 800
    assert sorted(int(p.stem) for p in mails) == sorted(sent)  # the outbox names files by ledger id
    assert max(n for _, _, n in pairs) == 1
    assert Counter(o[0].strip().splitlines()[-1][:7] for o in outputs)  # both reported something


PASS_WORKER = """
import sys
from flows.runtime import quiet_prefect
quiet_prefect()
from flows.pass_flows import loyalflow_pass
print(loyalflow_pass(sys.argv[1], chunk_size=150)["totals"])
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_two_passes_at_once_send_each_step_once(postgres_engine: Engine, tmp_path: Path) -> None:
    """Two runs of the production pass overlapping (two servers, or a manual run beside the scheduled one):
    the journey clock lets one of them enroll, the claims split the advance, nobody gets a step twice."""
    _members(postgres_engine, 600)
    _run_two(postgres_engine, tmp_path, PASS_WORKER, timeout=900)
    with Session(postgres_engine) as s:
        sent = s.scalars(select(Send.id).where(Send.status == SendStatus.sent)).all()
        pairs = s.execute(select(Send.enrollment_id, Send.step_key, func.count()).group_by(
            Send.enrollment_id, Send.step_key)).all()
    mails = list((tmp_path / "outbox" / "email").glob("*.eml"))
    assert len(sent) == 600 == len(mails) and max(n for _, _, n in pairs) == 1
