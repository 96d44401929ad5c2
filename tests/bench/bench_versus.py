"""Benchmark: loyalflow's whole tick against the competent hand-written sender, paired, on one database.

One tick of points-expiring and win-back at 12:00 UTC on the demo data (tests/bench/pipeline_data.py),
the real templates, gate, ledger and SDK adapters, delivering to the lean fake (tests/bench/lean_fake.py,
20 ms, its own process). Then tests/bench/competent_sender.py sends the same messages from the same
database to the same fake, with a fresh `sent` table. Every side runs in processes of its own, so CPU
and peak RSS are per process and imports are not counted as work. `--pairs N` repeats A B A B on fresh
copies; the figures are the pairs' medians.

    python -m tests.bench.bench_versus --members 100000 [--processes 2] [--pairs 3] [--json] [--out FILE]

`--processes N`: the tick's enrollment runs once (one process), then N processes advance the same tick
concurrently (their claims share the work); the split and each process's RSS are reported.
`--warm`: first a tick the day before (not measured), so the measured tick is a daily one as production
runs it, with yesterday's enrollments waiting; the competent script then sends what today's tick sent.
`--postgres`: loyalflow's same tick also on a throwaway PostgreSQL (Debian's server, started on
127.0.0.1) loaded with the same data, reported beside SQLite's (`postgresql`, `postgres_vs_sqlite`).
`--json` prints one JSON object on stdout (the human table goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from tests.bench.lean_fake import LeanFakes
from tests.bench.pipeline_data import cached_sqlite, fresh_copy, loaded_postgres

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
NOW = AS_OF + timedelta(hours=12)
SEED = 1
RESULTS = Path("bench-results")
ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """A child process speaking the ready/go protocol of tick_worker and competent_sender."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=dict(env), cwd=ROOT)
        self.ready = self._line()

    def _line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(60)
            raise RuntimeError(f"{self.process.args}: exited {self.process.returncode} without a report")
        return json.loads(line)

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        out = self._line()
        self.process.wait(60)
        return out


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALFLOW_")}
    env.update(values)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    yield env


def run_loyalflow(url: str, processes: int, env: Mapping[str, str], chunk: int) -> dict[str, Any]:
    """The tick in one process, or enrollment in one then advance in `processes` concurrently, each
    claiming `chunk` due enrollments at a time (small enough that every process gets a share)."""
    now = NOW.isoformat()
    if processes == 1:
        workers = {"tick": Worker(["tests.bench.tick_worker", url, "tick", now, str(chunk)], env)}
        workers["tick"].go()
        reports = {"tick": workers["tick"].result()}
    else:
        workers = {"enroll": Worker(["tests.bench.tick_worker", url, "enroll", now], env)}
        workers |= {f"advance_{i + 1}": Worker(["tests.bench.tick_worker", url, "advance", now, str(chunk)], env)
                    for i in range(processes)}
        workers["enroll"].go()
        reports = {"enroll": workers["enroll"].result()}
        for name, w in workers.items():
            if name != "enroll":
                w.go()
        reports |= {name: w.result() for name, w in workers.items() if name != "enroll"}
    wall = max(r["wall_end"] for r in reports.values()) - min(r["wall_start"] for r in reports.values())
    messages = sum(r["messages"] for r in reports.values())
    enroll_s = sum(r["enroll_s"] for r in reports.values())
    enroll_cpu = sum(r.get("enroll_cpu_s", 0.0) for r in reports.values())
    advance_wall = wall - enroll_s if processes == 1 else \
        max(r["wall_end"] for r in reports.values()) - min(r["wall_start"] for n, r in reports.items() if n != "enroll")
    cpu = sum(r["cpu_s"] for r in reports.values())
    return {
        "messages": messages, "enrolled": sum(r["enrolled"] for r in reports.values()),
        "seconds": round(wall, 3), "msgs_per_s": round(messages / wall, 1) if wall else 0.0,
        "enroll_s": round(enroll_s, 3), "enroll_cpu_s": round(enroll_cpu, 3),
        "advance_cpu_us_per_msg": round((cpu - enroll_cpu) / messages * 1e6, 1) if messages else 0.0,
        "advance_msgs_per_s": round(messages / advance_wall, 1) if advance_wall > 0 else 0.0,
        "cpu_s": round(cpu, 3), "cpu_us_per_msg": round(cpu / messages * 1e6, 1) if messages else 0.0,
        "peak_rss_mib": {name: r["peak_rss_mib"] for name, r in reports.items()},
        "rss_before_work_mib": {name: w.ready["rss_ready_mib"] for name, w in workers.items()},
        "startup_s": {name: w.ready["startup_s"] for name, w in workers.items()},
        "worker_imports": sorted({m for w in workers.values() for m in w.ready["modules"]}),
        "split": {name: r["messages"] for name, r in reports.items() if name.startswith("advance")},
        "process_s": {name: round(r["wall_end"] - r["wall_start"], 3) for name, r in reports.items()},
        "process_cpu_s": {name: r["cpu_s"] for name, r in reports.items()},
        "journeys": {name: r["journeys"] for name, r in reports.items()},
    }


def warm_up(url: str, env: Mapping[str, str], chunk: int) -> dict[str, Any]:
    """The tick the day before, not measured: what a daily schedule has already done when today's tick
    runs (enrollments waiting for their reminders, yesterday's messages sent)."""
    worker = Worker(["tests.bench.tick_worker", url, "tick", (NOW - timedelta(days=1)).isoformat(), str(chunk)], env)
    worker.go()
    return worker.result()


def run_competent(url: str, fake_url: str, env: Mapping[str, str], since: datetime | None = None) -> dict[str, Any]:
    args = [url, fake_url, NOW.isoformat()] + ([since.isoformat()] if since else [])
    worker = Worker(["tests.bench.competent_sender", *args], env)
    worker.go()
    r = worker.result()
    wall = r["wall_end"] - r["wall_start"]
    return {"messages": r["messages"], "failed": r["failed"], "audience": r["audience"], "seconds": round(wall, 3),
            "msgs_per_s": round(r["messages"] / wall, 1) if wall else 0.0, "cpu_s": r["cpu_s"],
            "cpu_us_per_msg": round(r["cpu_s"] / r["messages"] * 1e6, 1) if r["messages"] else 0.0,
            "peak_rss_mib": r["peak_rss_mib"]}


def _fake_figures(counts: Mapping[str, Any]) -> dict[str, Any]:
    return {"accepted": counts["sendgrid"]["accepted"] + counts["twilio"]["accepted"],
            "duplicates": counts["sendgrid"]["duplicates"] + counts["twilio"]["duplicates"],
            "rejected": counts["rejected"], "cpu_us_per_request": counts["cpu_us_per_request"]}


def _measured_tick(url: str, env: dict[str, str], fakes: LeanFakes, processes: int, chunk: int,
                   warm: bool) -> dict[str, Any]:
    """loyalflow's tick on `url` (after an unmeasured warm-up day if asked), with the fake's counts."""
    if warm:
        warm_up(url, env, chunk)
    fakes.reset()
    ours = run_loyalflow(url, processes, env, chunk)
    ours["fake"] = _fake_figures(fakes.counts())
    return ours


def run_pair(source: Path, folder: Path, fakes: LeanFakes, processes: int, concurrency: int,
             chunk: int, warm: bool = False) -> dict[str, Any]:
    db = fresh_copy(source, folder)
    url = f"sqlite:///{db}"
    with environment(fakes.environment(concurrency)) as env:
        ours = _measured_tick(url, env, fakes, processes, chunk, warm)
        fakes.reset()
        theirs = run_competent(url, fakes.url, env, since=NOW if warm else None)
        theirs["fake"] = _fake_figures(fakes.counts())
    db.unlink()
    for extra in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        extra.unlink(missing_ok=True)
    return {"loyalflow": ours, "competent": theirs}


def run_on_postgres(source: Path, fakes: LeanFakes, processes: int, concurrency: int,
                    chunk: int, warm: bool = False) -> dict[str, Any] | None:
    """loyalflow's same tick on a throwaway PostgreSQL loaded with `source`'s rows (then VACUUM
    ANALYZE, as autovacuum keeps a production database); None when this machine has no server."""
    with loaded_postgres(source) as loaded:
        if loaded is None:
            return None
        url, load_s = loaded
        with environment(fakes.environment(concurrency)) as env:
            ours = _measured_tick(url, env, fakes, processes, chunk, warm)
        ours["load_s"] = round(load_s, 1)
        return ours


def summary(members: int, processes: int, pairs: list[dict[str, Any]], latency: float, chunk: int,
            postgres: dict[str, Any] | None = None, warm: bool = False) -> dict[str, Any]:
    """The pairs' medians as the headline figures, every pair kept under `pairs`."""
    def med(side: str, key: str) -> float:
        return round(statistics.median(p[side][key] for p in pairs), 1)

    ours, theirs = pairs[len(pairs) // 2]["loyalflow"], pairs[len(pairs) // 2]["competent"]
    ratios = [p["loyalflow"]["msgs_per_s"] / p["competent"]["msgs_per_s"] for p in pairs if p["competent"]["msgs_per_s"]]
    fake_cpu = [p[side]["fake"]["cpu_us_per_request"] for p in pairs for side in ("loyalflow", "competent")]
    return {
        "members": members, "processes": processes, "chunk_size": chunk, "warm": warm, "pairs_run": len(pairs),
        "latency_ms": latency * 1000,
        "messages": ours["messages"], "competent_messages": theirs["messages"],
        "end_to_end_msgs_per_s": med("loyalflow", "msgs_per_s"), "competent_msgs_per_s": med("competent", "msgs_per_s"),
        "ratio": round(statistics.median(ratios), 3) if ratios else 0.0,
        "cpu_us_per_msg": med("loyalflow", "cpu_us_per_msg"),
        "enroll_s": med("loyalflow", "enroll_s"), "enroll_cpu_s": med("loyalflow", "enroll_cpu_s"),
        "advance_msgs_per_s": med("loyalflow", "advance_msgs_per_s"),
        "advance_cpu_us_per_msg": med("loyalflow", "advance_cpu_us_per_msg"),
        "competent_cpu_us_per_msg": med("competent", "cpu_us_per_msg"),
        "peak_rss_mib": {k: max(p["loyalflow"]["peak_rss_mib"][k] for p in pairs) for k in ours["peak_rss_mib"]},
        "competent_peak_rss_mib": max(p["competent"]["peak_rss_mib"] for p in pairs),
        "rss_before_work_mib": ours["rss_before_work_mib"], "startup_s": ours["startup_s"],
        "worker_imports": ours["worker_imports"],
        "split": ours["split"], "process_s": ours["process_s"], "process_cpu_s": ours["process_cpu_s"],
        "duplicates": sum(p["loyalflow"]["fake"]["duplicates"] for p in pairs),
        "competent_duplicates": sum(p["competent"]["fake"]["duplicates"] for p in pairs),
        "fake_accepted": ours["fake"]["accepted"], "competent_fake_accepted": theirs["fake"]["accepted"],
        "fake_cpu_us_per_request": round(statistics.median(fake_cpu), 1),
        "cpus": os.cpu_count(), "load_avg": round(os.getloadavg()[0], 2),
        "postgresql": postgres,
        "postgres_vs_sqlite": round(postgres["msgs_per_s"] / med("loyalflow", "msgs_per_s"), 3)
        if postgres and med("loyalflow", "msgs_per_s") else None,
        "pairs": pairs,
    }


def print_table(r: Mapping[str, Any], out: TextIO) -> None:
    print(f"{r['members']:,} members, {'the daily tick after a warm-up day' if r['warm'] else 'the first tick'}, "
          f"{r['pairs_run']} pair(s), {r['processes']} advance process(es), lean fake "
          f"{r['latency_ms']:.0f} ms ({r['fake_cpu_us_per_request']:.0f} µs CPU/request), load {r['load_avg']}", file=out)
    print(f"  {'':<22}{'messages':>10}{'msg/s':>10}{'CPU µs/msg':>12}  peak RSS MiB", file=out)
    print(f"  {'loyalflow tick':<22}{r['messages']:>10,}{r['end_to_end_msgs_per_s']:>10,.0f}{r['cpu_us_per_msg']:>12,.0f}  "
          + ", ".join(f"{k} {v:,.0f}" for k, v in r["peak_rss_mib"].items()), file=out)
    print(f"  {'competent script':<22}{r['competent_messages']:>10,}{r['competent_msgs_per_s']:>10,.0f}"
          f"{r['competent_cpu_us_per_msg']:>12,.0f}  {r['competent_peak_rss_mib']:,.0f}", file=out)
    print(f"  ratio loyalflow/competent {r['ratio']:.2f}x; duplicates {r['duplicates']} (competent "
          f"{r['competent_duplicates']}); split {r['split'] or '-'}", file=out)
    print(f"  loyalflow enrollment {r['enroll_s']:,.1f} s ({r['enroll_cpu_s']:,.1f} s CPU); advance alone "
          f"{r['advance_msgs_per_s']:,.0f} msg/s, {r['advance_cpu_us_per_msg']:,.0f} µs CPU/msg", file=out)
    print("  loyalflow processes: " + ", ".join(f"{k} {v:,.1f} s ({r['process_cpu_s'][k]:,.1f} s CPU)"
                                              for k, v in r["process_s"].items()), file=out)
    if pg := r.get("postgresql"):
        print(f"  loyalflow on PostgreSQL: {pg['messages']:,} messages, {pg['msgs_per_s']:,.0f} msg/s, "
              f"{pg['cpu_us_per_msg']:,.0f} µs CPU/msg, duplicates {pg['fake']['duplicates']}; "
              f"{r['postgres_vs_sqlite']:.2f}x SQLite (data loaded in {pg['load_s']:,.0f} s)", file=out)
    for i, p in enumerate(r["pairs"], 1):
        print(f"  pair {i}: loyalflow {p['loyalflow']['msgs_per_s']:,.0f} msg/s {p['loyalflow']['cpu_us_per_msg']:,.0f} µs, "
              f"competent {p['competent']['msgs_per_s']:,.0f} msg/s {p['competent']['cpu_us_per_msg']:,.0f} µs", file=out)


def default_chunk(processes: int) -> int:
    """One process: the engine's own chunk. Several: 1,000, so that a journey with fewer due
    enrollments than one engine chunk (win-back's few thousand) is still shared between them."""
    from journeys.engine import DEFAULT_CHUNK

    return DEFAULT_CHUNK if processes == 1 else 1_000


def run(members: int, *, processes: int = 1, pairs: int = 1, concurrency: int = 128,
        latency: float = 0.02, chunk: int | None = None, postgres: bool = False, warm: bool = False) -> dict[str, Any]:
    chunk = chunk or default_chunk(processes)
    RESULTS.mkdir(exist_ok=True)
    source = cached_sqlite(members, SEED, log=False)
    done = []
    with tempfile.TemporaryDirectory(prefix="bench_versus_", dir=RESULTS) as tmp, LeanFakes(latency) as fakes:
        for _ in range(pairs):
            done.append(run_pair(source, Path(tmp), fakes, processes, concurrency, chunk, warm))
        pg = run_on_postgres(source, fakes, processes, concurrency, chunk, warm) if postgres else None
    if postgres and pg is None:
        raise SystemExit("--postgres: no PostgreSQL server on this machine (Debian: apt-get install postgresql)")
    return summary(members, processes, done, latency, chunk, pg, warm)


def chart(runs: list[dict[str, Any]], path: Path) -> None:
    """Throughput and peak RSS against members, loyalflow beside the competent script."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = [r["members"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(members, [r["end_to_end_msgs_per_s"] for r in runs], "o-", label="loyalflow tick")
    left.plot(members, [r["competent_msgs_per_s"] for r in runs], "s--", label="competent script")
    left.set(xscale="log", xlabel="members", ylabel="messages/s", title="End to end (paired, same fake)")
    left.legend()
    right.plot(members, [max(r["peak_rss_mib"].values()) for r in runs], "o-", label="loyalflow (largest process)")
    right.plot(members, [r["competent_peak_rss_mib"] for r in runs], "s--", label="competent script")
    right.axhline(500, color="red", linestyle=":", label="target 500 MB")
    right.set(xscale="log", xlabel="members", ylabel="MiB", title="Peak RSS")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


START, END = "<!-- bench_versus:start -->", "<!-- bench_versus:end -->"


def results_markdown(runs: list[dict[str, Any]], command: str, png: str) -> str:
    lines = [START, "## loyalflow against the competent script", "",
             f"Produced by `{command}` on {runs[-1]['cpus']} CPUs (load average {runs[-1]['load_avg']} at the "
             "end, the benchmark's own threads included; compare it with the CPU count before trusting msg/s). SQLite, one tick of points-expiring and win-back, "
             "the lean fake answering after 20 ms; each side in processes of its own, paired on the same database.", "",
             "| members | messages | loyalflow msg/s | competent msg/s | ratio | loyalflow CPU µs/msg | competent CPU "
             "µs/msg | loyalflow peak RSS MiB | competent peak RSS MiB | fake CPU µs/req | duplicates |",
             "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in runs:
        rss = ", ".join(f"{k} {v:,.0f}" for k, v in r["peak_rss_mib"].items())
        lines.append(f"| {r['members']:,} | {r['messages']:,} | {r['end_to_end_msgs_per_s']:,.0f} | "
                     f"{r['competent_msgs_per_s']:,.0f} | {r['ratio']:.2f} | {r['cpu_us_per_msg']:,.0f} | "
                     f"{r['competent_cpu_us_per_msg']:,.0f} | {rss} | {r['competent_peak_rss_mib']:,.0f} | "
                     f"{r['fake_cpu_us_per_request']:,.0f} | {r['duplicates']} |")
    lines += ["", f"![scaling]({png})", "", END]
    return "\n".join(lines)


def write_results(section: str, path: Path) -> None:
    """Replace this benchmark's section of RESULTS.md (or put it first), leaving the rest as it is."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Pipeline benchmark\n"
    if START in old and END in old:
        new = old[:old.index(START)] + section + old[old.index(END) + len(END):]
    else:
        head, _, rest = old.partition("\n")
        new = f"{head}\n\n{section}\n{rest}"
    path.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=1, help="advance processes sharing the tick")
    parser.add_argument("--pairs", type=int, default=1, help="loyalflow/competent pairs (A B A B), medians reported")
    parser.add_argument("--concurrency", type=int, default=128, help="loyalflow's adapter threads")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the fake takes to answer")
    parser.add_argument("--chunk-size", type=int, help="due enrollments an advance process claims at a time "
                        "(default: the engine's 5,000 with one process, 1,000 with several)")
    parser.add_argument("--warm", action="store_true", help="a tick the day before first (not measured): the "
                        "daily tick production runs, not the first one after a journey is deployed")
    parser.add_argument("--postgres", action="store_true", help="loyalflow's tick also on a throwaway PostgreSQL")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout; the table on stderr")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--scaling", help="comma-separated sizes: one run each, the chart and RESULTS.md's section")
    args = parser.parse_args(argv)
    if args.processes < 1 or args.pairs < 1 or args.members < 1:
        parser.error("--members, --processes and --pairs must be at least 1")
    if args.scaling:
        runs = [run(n, processes=args.processes, pairs=args.pairs, concurrency=args.concurrency, latency=args.latency,
                    chunk=args.chunk_size, postgres=args.postgres, warm=args.warm)
                for n in sorted(int(x) for x in args.scaling.split(","))]
        png = Path(__file__).with_name("pipeline_scaling.png")
        chart(runs, png)
        command = "python -m tests.bench.bench_versus " + " ".join(argv if argv is not None else sys.argv[1:])
        section = results_markdown(runs, command, png.name)
        write_results(section, Path(__file__).with_name("RESULTS.md"))
        print(section, file=sys.stderr if args.json else sys.stdout)
        result: dict[str, Any] = {"runs": runs}
        if args.json:
            print(json.dumps(result, default=str))
        if args.out:
            args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        return result
    result = run(args.members, processes=args.processes, pairs=args.pairs, concurrency=args.concurrency,
                 latency=args.latency, chunk=args.chunk_size, postgres=args.postgres, warm=args.warm)
    print_table(result, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result, default=str))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
