"""SIGKILL at random moments on a loaded machine: a child process sends the welcome email to every
new member through the real SendGrid adapter to a local fake SendGrid, and is killed with SIGKILL
20 times; each restart runs at now + 20 min (past the 15-minute lease), until a run ends by itself.
Meanwhile a CPU burner spins on every core, the fake answers 10% of requests after the client's
timeout (having taken the message), and its Event Webhook events reach the ledger through the real
webhook code. Then what the fake received (ledger ids from custom_args) is compared with the ledger.

LOYALFLOW_RELIABILITY_MESSAGES sets the size (default fits CI; the README figures name theirs),
LOYALFLOW_RELIABILITY_KILLS the number of kills (default 20).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from journeys.settle import upgrade_from_events
from tests.reliability.crash_worker import API_KEY
from tests.reliability.support import (
    LEASE_PLUS,
    NOW,
    EventPump,
    FlakySendGrid,
    accepted_ids,
    cpu_burners,
    populate,
    reconcile,
)
from tests.support.fake_providers import FakeSendGrid

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = int(os.environ.get("LOYALFLOW_RELIABILITY_MESSAGES", "5000"))
KILLS = int(os.environ.get("LOYALFLOW_RELIABILITY_KILLS", "20"))
VERBOSE = bool(os.environ.get("LOYALFLOW_RELIABILITY_VERBOSE"))
TIMEOUT = 0.5
"""The worker's request timeout; 10% of answers come 0.8 s late, after it."""


def _start(url: str, now_index: int, fake: FakeSendGrid, ready: Path) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    now = NOW + LEASE_PLUS * now_index
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_worker", "--db", url, "--now", now.isoformat(),
         "--sendgrid", fake.base_url, "--ready", str(ready), "--chunk", "100", "--timeout", str(TIMEOUT),
         "--concurrency", "16"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_ready(proc: subprocess.Popen[bytes], ready: Path) -> None:
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited {proc.returncode} before it was ready: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "worker did not get ready"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_sends_nothing_twice(sqlite_engine: Engine, tmp_path: Path) -> None:
    populate(sqlite_engine, MESSAGES)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    rng = random.Random(int(os.environ.get("LOYALFLOW_RELIABILITY_SEED", "20261123")))
    ready = tmp_path / "ready"
    started = time.monotonic()
    with cpu_burners(), FlakySendGrid(api_key=API_KEY, fault_rate=0.0, slow_rate=0.1, timeout_delay=TIMEOUT + 0.3) \
            as fake, EventPump(sqlite_engine, sendgrid=fake) as pump:
        kills, runs = 0, 0
        while kills < KILLS:
            proc = _start(url, runs, fake, ready)
            runs += 1
            t0 = time.monotonic()
            _wait_ready(proc, ready)
            if VERBOSE:
                print(f"run {runs}: ready in {time.monotonic() - t0:.1f}s, accepted so far {fake.accepted_count}")
            before = fake.accepted_count
            # a random point of the work still to do, spread so the last kills still land mid-run,
            # plus a random few milliseconds: kills hit enrolling, claiming, sending and recording
            share = (MESSAGES - before) / (KILLS - kills + 1)
            target = before + int(rng.uniform(0.0, 1.2 * share))
            while fake.accepted_count < target and proc.poll() is None:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.05))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                time.sleep(TIMEOUT + 0.4)  # the late answers of the killed run finish; their events arrive
                pump.drain()
            else:
                assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                break  # finished before the kill: the remaining kills have nothing left to hit
        for _ in range(8):  # resume until a run ends by itself with nothing left
            time.sleep(TIMEOUT + 0.4)
            pump.drain()
            proc = _start(url, runs, fake, ready)
            runs += 1
            t0 = time.monotonic()
            _, err = proc.communicate(timeout=600)
            if VERBOSE:
                print(f"final run {runs}: {time.monotonic() - t0:.1f}s, accepted so far {fake.accepted_count}")
            assert proc.returncode == 0, err.decode()[-2000:]
            rec = reconcile(sqlite_engine, accepted_ids(fake), step=None)
            if rec.open_rows == 0 and rec.missing_rows == 0:
                break
        time.sleep(TIMEOUT + 0.4)
        pump.drain()  # events that came after the last run are applied by the next pass, as here
        with Session(sqlite_engine) as s:
            upgrade_from_events(s, "welcome", NOW + LEASE_PLUS * runs)
            s.commit()
        received = accepted_ids(fake)
    rec = reconcile(sqlite_engine, received)
    elapsed = time.monotonic() - started
    print(f"\nSIGKILL crash (loaded): messages={MESSAGES} kills={kills} runs={runs} seconds={elapsed:.0f} "
          f"late_answers={fake.injected['slow']} events={pump.applied} {rec.figures()}")
    assert kills == KILLS or MESSAGES < 1000, f"only {kills} kills landed mid-run"
    assert fake.injected["slow"] >= 0.05 * MESSAGES, "the late answers were not injected"
    assert rec.enrollments == MESSAGES
    assert rec.duplicates == 0, "a message reached the provider twice"
    assert rec.sent_not_received == 0, "the ledger says sent but the provider never got it"
    assert rec.received_not_sent == 0 and rec.unknown_received == 0, \
        "the provider got a message the ledger does not say is sent (its event should have settled it)"
    assert rec.missing_rows == 0 and rec.open_rows == 0, "a due step was lost"
    assert set(rec.reasons) <= {"outcome_unknown"}, rec.reasons
    assert rec.ledger["sent"] + rec.ledger["failed"] == MESSAGES
    # a killed run leaves at most one chunk (100) in flight: those the provider never got, and no
    # event can vouch for, end failed `outcome_unknown` - visible, never resent
    assert rec.ledger["failed"] <= 100 * kills
