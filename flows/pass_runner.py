"""The pass runner: one thread that runs `journeys.passes.run_pass` when woken (a job, an event, a
wake probe), never two at once, retried within seconds when a pass fails, logging counts only."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from journeys.dsl import Journey
from journeys.services import Services

log = logging.getLogger("loyalflow.scheduler")

PROBE_SECONDS = 1.0
RETRY_SECONDS = (1, 2, 5, 10, 30)
"""Waits before retrying a failed pass: prompt first, then gentler while the database stays down."""

WakeProbe = Callable[[Session], Any]
"""One cheap indexed query; the runner wakes when its value changes (e.g. the newest event id)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def events_high_water(session: Session) -> Any:
    """The newest event id: a new event (from `serve` or `events import` in another process) wakes a pass."""
    return session.execute(text("SELECT max(id) FROM events")).scalar()


WAKE_PROBES: list[WakeProbe] = [events_high_water]
"""Probes every runner checks each second; append to add one (each must be one indexed query)."""


def failure_reason(exc: BaseException) -> str:
    """Why a pass failed, without personal data: the class, and for a database outage its first line."""
    if isinstance(exc, OperationalError) and exc.orig is not None:
        lines = str(exc.orig).strip().splitlines()
        return f"database error: {lines[0][:200]}" if lines else "database error"
    return type(exc).__name__


def summary(result: Any) -> dict[str, int]:
    """Counts of a pass for the log line: enrolled, sent, skipped, failed, exited (never who)."""
    per_journey = getattr(result, "journeys", None)
    if per_journey is None and isinstance(result, Mapping):
        per_journey = result
    totals = {"enrolled": 0, "advanced": 0, "sent": 0, "skipped": 0, "failed": 0, "exited": 0}
    for stats in (per_journey or {}).values():
        totals["enrolled"] += stats.enrolled
        totals["advanced"] += stats.advanced
        totals["sent"] += stats.messages
        for name in ("skipped", "failed", "exited"):
            totals[name] += sum(getattr(stats, name).values())
    return totals


class PassRunner:
    """One thread that runs passes when woken; never two at once, retried promptly when one fails."""

    def __init__(self, session_factory: Callable[[], Session], journeys: Mapping[str, Journey],
                 services: Services, *, clock: Callable[[], datetime] = utcnow,
                 probes: Iterable[WakeProbe] | None = None, chunk_size: int | None = None,
                 probe_seconds: float = PROBE_SECONDS, retry_seconds: tuple[float, ...] = RETRY_SECONDS) -> None:
        self.session_factory = session_factory
        self.journeys = dict(journeys)
        self.services = services
        self.clock = clock
        self.probes = list(WAKE_PROBES if probes is None else probes)
        self.chunk_size = chunk_size
        self.probe_seconds = probe_seconds
        self.retry_seconds = retry_seconds
        self.failures = 0
        self.passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seen: dict[int, Any] = {}
        self._thread: threading.Thread | None = None

    # what jobs and event producers call
    def wake(self) -> None:
        self._wake.set()

    def run_once(self, now: datetime | None = None) -> Any:
        """One pass at `now` (default the clock); raises what the pass raises."""
        from journeys.passes import run_pass

        instant = now or self.clock()
        kwargs: dict[str, Any] = {} if self.chunk_size is None else {"chunk_size": self.chunk_size}
        result = run_pass(self.session_factory, self.journeys, instant, self.services, **kwargs)
        self.passes += 1
        counts = summary(result)
        if any(counts.values()):
            log.info("pass at %s: %s", instant.isoformat(timespec="seconds"),
                     ", ".join(f"{k} {v}" for k, v in counts.items() if v))
        return result

    def probe(self) -> bool:
        """True when a probe's value changed since the last check (the first check only records it)."""
        changed = False
        try:
            with self.session_factory() as session:
                for i, probe in enumerate(self.probes):
                    try:
                        value = probe(session)
                    except Exception:  # noqa: BLE001 - e.g. no such table yet; the minute pass still runs
                        session.rollback()
                        continue
                    if i in self._seen and self._seen[i] != value:
                        changed = True
                    self._seen[i] = value
        except Exception:  # noqa: BLE001 - the database is down: the failing pass reports it
            return False
        return changed

    def step(self) -> bool:
        """Run a pass, logging a failure; returns whether it succeeded."""
        try:
            self.run_once()
        except Exception as exc:  # noqa: BLE001 - whatever failed, the pass is retried
            self.failures += 1
            delay = self.retry_seconds[min(self.failures, len(self.retry_seconds)) - 1]
            log.warning("pass failed (%s); retrying in %ss", failure_reason(exc), delay)
            return False
        if self.failures:
            log.warning("pass succeeded after %d failed attempt(s)", self.failures)
        self.failures = 0
        return True

    def loop(self) -> None:
        self.probe()  # remember where the probes start
        while not self._stop.is_set():
            if self.failures:
                woke = not self._stop.wait(self.retry_seconds[min(self.failures, len(self.retry_seconds)) - 1])
            else:
                woke = self._wake.wait(self.probe_seconds) or self.probe()
            if self._stop.is_set():
                break
            if woke:
                self._wake.clear()
                self.step()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="loyalflow-pass", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Let a running pass finish (its claims are committed per chunk), then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
