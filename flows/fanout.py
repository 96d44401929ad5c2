"""A large journey's due steps fanned out to a work pool: one deployment run per id range.

The pass (`flows/pass_flows.py`) splits a journey with more due enrollments than its chunk size into
id ranges (`engine.chunk_bounds`, never a list of members) and starts one run of the
`loyalflow-advance-range/fan-out` deployment per range; whichever worker of the pool is free, on
any machine, takes it. The engine's leases and the ledger's unique (enrollment, step) key already
keep two workers from sending the same step, so ranges only make the split.

Why deployment runs and not a distributed task runner: a worker is just `prefect worker start
--pool X` on a machine with the checkout and the environment, no cluster to run beside Prefect,
no new dependency, and each range is a flow run the UI shows with its worker and counts.

A range run reports its counts, its engine time and who ran it in a table artifact (results are not
persisted: the pass may run on another machine than the range). A range run that fails, crashes or
is never picked up (no worker started or finished any range for `pickup_seconds`: e.g. one worker
with `--limit 1`, busy with the pass itself) is finished by the pass in its own process, resuming
that range's leases.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run as current_run

from flows import runtime
from journeys.stats import TickStats

RANGE_FLOW = "loyalflow-advance-range"
RANGE_DEPLOYMENT = "fan-out"
RANGE_NAME = f"{RANGE_FLOW}/{RANGE_DEPLOYMENT}"
RANGE_ENTRYPOINT = "flows/fanout.py:advance_range"
PICKUP_SECONDS = 300.0
"""How long the pass waits while no worker starts or finishes any of its range runs before it runs the
ranges nobody took itself (ranges queued behind busy workers that are progressing keep waiting)."""
POLL_SECONDS = 1.0
"""How often the pass reads the states of its range runs (one request for all of them)."""

_COUNTS = ("enrolled", "held_out", "advanced", "completed", "deferred")
_PER_KEY = ("sent", "skipped", "failed", "exited", "zone_fallback")
_FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _utc(value: Any) -> datetime | None:
    """A plain UTC datetime from Prefect's own datetime type (or None)."""
    return None if value is None else datetime.fromtimestamp(value.timestamp(), timezone.utc)


def who() -> str:
    """Which worker runs this range: the host and the worker's name when Prefect passes it on, else the
    worker's process id (a process worker starts each flow run as its own child)."""
    name = os.environ.get("PREFECT__WORKER_NAME") or os.environ.get("PREFECT__WORKER_ID")
    return f"{socket.gethostname()}/{name or f'pid {os.getppid()}'}"


def stats_rows(stats: TickStats, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """A range's counts and timing as a table (kind, detail, value): readable in the UI and by the pass."""
    rows = [{"kind": k, "detail": "", "value": getattr(stats, k)} for k in _COUNTS]
    rows += [{"kind": k, "detail": d, "value": n} for k in _PER_KEY for d, n in sorted(getattr(stats, k).items()) if n]
    rows += [{"kind": "meta", "detail": k, "value": v} for k, v in sorted(meta.items())]
    return rows


def parse_rows(rows: list[dict[str, Any]]) -> tuple[TickStats, dict[str, Any]]:
    """The inverse of `stats_rows`."""
    stats, meta = TickStats(), {}
    for row in rows:
        kind, detail, value = row["kind"], row["detail"], row["value"]
        if kind in _COUNTS:
            setattr(stats, kind, int(value))
        elif kind in _PER_KEY:
            getattr(stats, kind)[detail] += int(value)
        elif kind == "meta":
            meta[detail] = value
    return stats, meta


def range_run_name() -> str:
    """`welcome [1, 20001) 2026-11-23T15:00Z`: the journey, the id range and the pass's instant."""
    p = current_run.parameters or {}
    return f"{p.get('journey')} [{p.get('lo')}, {p.get('hi')}) {_instant(p['now']):%Y-%m-%dT%H:%MZ}"


@flow(name=RANGE_FLOW, flow_run_name=range_run_name, retries=1, retry_delay_seconds=2, persist_result=False,
      log_prints=False)
def advance_range(journey: str, now: str, lo: int, hi: int, worker: str) -> dict[str, Any]:
    """Advance the due enrollments of `journey` with ids in [lo, hi) under lease owner `worker`
    (a retry, or the pass finishing a failed run, resumes that owner's leases)."""
    from journeys.engine import advance
    from journeys.registry import get_journey

    wall, cpu = time.perf_counter(), time.process_time()
    stats = advance(runtime.session_factory(), get_journey(journey), _instant(now), runtime.services(),
                    id_range=(lo, hi), worker=worker)
    meta = {"engine_seconds": round(time.perf_counter() - wall, 4), "cpu_seconds": round(time.process_time() - cpu, 4),
            "worker": who(), "pid": os.getpid()}
    create_table_artifact(table=stats_rows(stats, meta),
                          description=f"{journey} [{lo}, {hi}) at {now}: counts, engine time and worker")
    return stats.as_dict() | {"meta": meta}


@dataclass
class RangeRun:
    """One fanned-out range: who ran it and what it cost beyond the engine's own time."""

    journey: str
    lo: int
    hi: int
    lease_owner: str
    run_id: str = ""
    run_name: str = ""
    state: str = "SCHEDULED"
    worker: str = ""
    advanced: int = 0
    sent: int = 0
    engine_seconds: float = 0.0
    cpu_seconds: float = 0.0
    queued_seconds: float = 0.0
    """created -> a worker took it (waiting for a free slot and the worker's next poll)"""
    launch_seconds: float = 0.0
    """a worker took it -> running (a new process, imports, the flow loaded from the checkout)"""
    run_seconds: float = 0.0
    """a worker took it -> ended: the wall time of the fanned-out run"""

    @property
    def overhead_seconds(self) -> float:
        """What running the range as its own flow run cost beyond the engine's time (queueing excluded)."""
        return round(self.run_seconds - self.engine_seconds, 3)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"overhead_seconds": self.overhead_seconds}


def fan_out_to_pool(journey: str, now: datetime, chunk_size: int, deployment: str = RANGE_NAME, *,
                    pickup_seconds: float = PICKUP_SECONDS, poll_seconds: float = POLL_SECONDS
                    ) -> tuple[TickStats, list[RangeRun]]:
    """One run of `deployment` per id range of about `chunk_size` due enrollments; waits for all of
    them and returns the merged counts and, per range, who ran it and its overhead."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from journeys.engine import chunk_bounds

    with runtime.session_factory()() as session:
        bounds = chunk_bounds(session, journey, now, chunk_size)
    parent = str(current_run.id or "") or os.urandom(6).hex()
    iso = now.isoformat()
    ranges = [RangeRun(journey, lo, hi, f"{parent[:8]}-{lo}") for lo, hi in bounds]
    pending: dict[str, RangeRun] = {}
    for r in ranges:
        run = run_deployment(deployment, timeout=0, idempotency_key=f"{parent}:{journey}:{r.lo}:{r.hi}",
                             parameters={"journey": journey, "now": iso, "lo": r.lo, "hi": r.hi,
                                         "worker": r.lease_owner})
        r.run_id, r.run_name = str(run.id), run.name
        pending[r.run_id] = r
    stats = TickStats()
    seen: dict[str, str] = {}
    progress = time.monotonic()  # the last time a worker started or finished one of these runs
    with get_client(sync_client=True) as client:
        while pending:
            runs = _read_runs(client, list(pending))
            states = {str(run.id): run.state_type.value if run.state_type else "SCHEDULED" for run in runs}
            if states != {k: seen.get(k) for k in states}:
                progress, seen = time.monotonic(), seen | states
            stalled = time.monotonic() - progress > pickup_seconds  # no worker free for that long
            for run in runs:
                r, kind = pending[str(run.id)], states[str(run.id)]
                if kind == "SCHEDULED" and not run.run_count and stalled:
                    kind = "CANCELLED" if _cancel(client, run.id) else kind
                if kind not in _FINAL:
                    continue
                del pending[str(run.id)]
                r.state = kind
                if kind == "COMPLETED":
                    stats.merge(_collect(client, run, r))
                else:  # failed, crashed or never picked up: finish the range here, resuming its leases
                    stats.merge(_finish_here(r, now))
            if pending:
                time.sleep(poll_seconds)
    return stats, ranges


def _read_runs(client: Any, ids: list[str]) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    return client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in ids])))


def _cancel(client: Any, run_id: UUID) -> bool:
    """Cancel a run no worker took; False when a worker took it meanwhile (the server refuses)."""
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    result = client.set_flow_run_state(run_id, Cancelled(message="no free worker; the pass ran this range itself"))
    accepted = getattr(result.status, "value", result.status) == "ACCEPT"
    return accepted and result.state is not None and result.state.type == StateType.CANCELLED


def _collect(client: Any, run: Any, r: RangeRun) -> TickStats:
    """A completed range's counts and timing, from its artifact and the server's timestamps."""
    import json

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    tables = [a for a in artifacts if a.type == "table"]
    if not tables:
        raise RuntimeError(f"range run {run.name} completed without its counts artifact")
    data = tables[-1].data
    stats, meta = parse_rows(json.loads(data) if isinstance(data, str) else data)
    created, start, end = _utc(run.created), _utc(run.start_time), _utc(run.end_time)
    taken = min((_utc(st.timestamp) for st in client.read_flow_run_states(run.id)
                 if st.type.value == "PENDING"), default=None) or start
    r.worker = str(meta.get("worker", ""))
    r.engine_seconds, r.cpu_seconds = float(meta.get("engine_seconds", 0)), float(meta.get("cpu_seconds", 0))
    if created and taken and start and end:
        r.queued_seconds = round((taken - created).total_seconds(), 3)
        r.launch_seconds = round((start - taken).total_seconds(), 3)
        r.run_seconds = round((end - taken).total_seconds(), 3)
    r.advanced, r.sent = stats.advanced, stats.messages
    return stats


def _finish_here(r: RangeRun, now: datetime) -> TickStats:
    from journeys.engine import advance
    from journeys.registry import get_journey

    wall = time.perf_counter()
    stats = advance(runtime.session_factory(), get_journey(r.journey), now, runtime.services(),
                    id_range=(r.lo, r.hi), worker=r.lease_owner)
    r.engine_seconds = r.run_seconds = round(time.perf_counter() - wall, 3)
    r.worker = f"the pass ({r.state.lower()} run)"
    r.advanced, r.sent = stats.advanced, stats.messages
    return stats


def publish(ranges: list[RangeRun]) -> None:
    """The split and the overhead per fanned-out run, as one table on the pass's run."""
    if not ranges:
        return
    create_table_artifact(key="loyalflow-fan-out", table=[r.as_dict() for r in ranges],
                          description="Ranges of the pass fanned out to the work pool: worker, engine time, "
                                      "time queued for a worker, and overhead (the run's wall time from the "
                                      "worker taking it to its end, minus engine time)")
