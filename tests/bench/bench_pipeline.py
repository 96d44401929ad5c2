"""Benchmark: the whole path (enroll, advance, gate, render, deliver, record) at N members, against
the naive way and a Prefect task per recipient, on the same data and the same fake providers.

One tick of points-expiring and win-back at 12:00 UTC on the demo data (as of 2026-11-23, seed 1,
cached under bench-results/data), with the real templates, the real gate and the real SendGrid and
Twilio adapters sending to the lean fake on 127.0.0.1 (tests/bench/lean_fake.py) that answers after 20 ms
(in a process of its own). The competent script, the baseline that matters, is in bench_versus.py.
Push has no provider configured here: those few sends fail `channel_not_configured`.

    python -m tests.bench.bench_pipeline [--members 10000] [--json FILE] [--postgres]
    python -m tests.bench.bench_pipeline --scaling 10000,100000,1000000 [--json FILE]   # + PNG, RESULTS.md

Figures: enroll time, advance throughput (enrollments/s), render throughput (renders/s of render
time), delivery throughput (messages/s of adapter time), end to end (messages/s over the whole
tick), peak RSS of this process (sampled), Prefect's share (the same tick through the
`journey-tick` flow vs plain engine calls, on a copy of the data at --prefect-members), and the
speed-up over the naive way and over a Prefect task per recipient (each on --sample messages).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy.orm import sessionmaker

from audiences.db import make_engine
from channels.adapters.base import Adapter, DeliveryResult, OutgoingMessage
from journeys.engine import advance, enroll_journey
from journeys.registry import get_journey
from journeys.services import Services, default_services
from journeys.stats import TickStats
from templates.rendered import Rendered
from tests.bench.lean_fake import SENDGRID_KEY, TWILIO_SID, TWILIO_TOKEN
from tests.bench.lean_fake import (
    LeanFakes as Fakes,  # framework-free: no web stack in this process
)
from tests.bench.pipeline_data import (
    AS_OF,
    cached_sqlite,
    copy_migrated,
    fresh_copy,
    loaded_postgres,
)

NOW = AS_OF + timedelta(hours=12)
JOURNEYS = ("points_expiring", "win_back")
SEED = 1
RESULTS = Path("bench-results")


# --- measuring ----------------------------------------------------------------------------------

class PeakRss:
    """Samples this process's RSS every 20 ms while active (ru_maxrss cannot be reset per phase)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def __enter__(self) -> PeakRss:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def mib(self) -> float:
        return self.peak / 2**20


@dataclass
class Sample:
    journey: str
    step: str
    locale: str
    context: dict[str, Any]
    channel: str = ""
    to: str = ""


@dataclass
class TimedRenderer:
    """The real renderer, timing every call and keeping the first contexts for the comparisons."""

    inner: Any
    keep: int = 0
    seconds: float = 0.0
    count: int = 0
    samples: list[Sample] = field(default_factory=list)

    def render(self, journey: str, step: str, locale: str, context: dict[str, Any]) -> Rendered:
        start = time.perf_counter()
        try:
            return self.inner.render(journey, step, locale, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1
            if len(self.samples) < self.keep:
                self.samples.append(Sample(journey, step, locale, dict(context)))


@dataclass
class TimedAdapter:
    inner: Adapter
    seconds: float = 0.0
    count: int = 0
    addresses: dict[int, str] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.inner.provider

    def send(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryResult]:
        start = time.perf_counter()
        try:
            return self.inner.send(messages)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += len(messages)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- loyalflow ----------------------------------------------------------------------------------

def run_loyalflow(url: str, keep: int) -> tuple[dict[str, Any], TimedRenderer, Services]:
    """One tick of each journey through the plain engine with timed render and adapters."""
    base = default_services()
    renderer = TimedRenderer(base.renderer, keep=keep)
    adapters = {ch: TimedAdapter(a) for ch, a in base.adapters.items()}
    services = replace(base, renderer=renderer, adapters=adapters)
    engine = make_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    per_journey: dict[str, Any] = {}
    totals = TickStats()
    enroll_s = advance_s = 0.0
    with PeakRss() as rss:
        started = time.perf_counter()
        for name in JOURNEYS:
            journey = get_journey(name)
            t0 = time.perf_counter()
            enrolled = enroll_journey(factory, journey, NOW)
            t1 = time.perf_counter()
            advanced = advance(factory, journey, NOW, services)
            t2 = time.perf_counter()
            enroll_s += t1 - t0
            advance_s += t2 - t1
            stats = enrolled.merge(advanced)
            totals.merge(stats)
            per_journey[name] = {"enroll_s": round(t1 - t0, 3), "advance_s": round(t2 - t1, 3), **stats.as_dict()}
        total_s = time.perf_counter() - started
    engine.dispose()
    delivery_s = sum(a.seconds for a in adapters.values())
    delivered = sum(a.count for a in adapters.values())
    figures = {
        "enrolled": totals.enrolled, "enroll_s": round(enroll_s, 3),
        "advanced": totals.advanced, "advance_s": round(advance_s, 3),
        "advance_per_s": round(totals.advanced / advance_s, 1) if advance_s else 0.0,
        "render": {"count": renderer.count, "seconds": round(renderer.seconds, 3),
                   "per_s": round(renderer.count / renderer.seconds, 1) if renderer.seconds else 0.0},
        "delivery": {"count": delivered, "seconds": round(delivery_s, 3),
                     "per_s": round(delivered / delivery_s, 1) if delivery_s else 0.0},
        "messages": totals.messages, "total_s": round(total_s, 3),
        "messages_per_s": round(totals.messages / total_s, 1) if total_s else 0.0,
        "peak_rss_mib": round(rss.mib, 1),
        "journeys": per_journey,
    }
    return figures, renderer, services


# --- the naive way and a Prefect task per recipient --------------------------------------------

def naive_send(samples: Sequence[Sample], settings: Any, first_id: int) -> float:
    """Per member: Jinja into the MJML source, compile it, send through the SDK, one at a time."""
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import CustomArg, Mail
    from twilio.rest import Client

    from templates.environment import html_env, text_env
    from templates.frontmatter import parse
    from templates.locales import normalize_locale
    from templates.mjml_compiler import compile_mjml

    library = default_services().renderer
    sendgrid = SendGridAPIClient(api_key=SENDGRID_KEY, host=settings.sendgrid_base_url)
    twilio = Client(TWILIO_SID, TWILIO_TOKEN)
    twilio.api.base_url = settings.twilio_base_url
    start = time.perf_counter()
    for i, s in enumerate(samples):
        file = library.resolve(s.journey, s.step, s.locale)
        doc = parse(file.path.read_text(encoding="utf-8"))
        ctx = {**s.context, "locale": normalize_locale(s.locale), "preheader": ""}
        if s.channel == "email":
            subject = text_env().from_string(doc.fields["subject"].value).render(ctx)
            mjml_source = html_env().from_string(doc.body).render(ctx)
            html = compile_mjml(mjml_source).html
            mail = Mail(from_email=settings.email_from, to_emails=s.to, subject=subject, html_content=html)
            mail.custom_arg = [CustomArg("ledger_id", str(first_id + i))]
            sendgrid.send(mail)
        else:
            body = text_env().from_string(doc.body).render(ctx)
            twilio.messages.create(to=s.to, from_=settings.sms_from, body=body,
                                   status_callback=f"{settings.public_base_url}/cb?ledger_id={first_id + i}")
    return time.perf_counter() - start


def task_per_recipient(samples: Sequence[Sample], services: Services, first_id: int) -> float:
    """The same render and adapter call, but one Prefect task run per recipient."""
    from prefect import flow, task

    @task(name="deliver-one")
    def deliver_one(i: int) -> str:
        s = samples[i]
        content = services.renderer.render(s.journey, s.step, s.locale, s.context)
        message = OutgoingMessage(first_id + i, s.channel, "transactional", s.journey, s.step, "member", i, s.to,
                                  content)
        return services.adapters[s.channel].send([message])[0].status.value

    @flow(name="deliver-per-recipient")
    def per_recipient() -> Counter[str]:
        futures = [deliver_one.submit(i) for i in range(len(samples))]
        return Counter(f.result() for f in futures)

    start = time.perf_counter()
    per_recipient()
    return time.perf_counter() - start


def prefect_share(source: Path, folder: Path, members: int) -> dict[str, Any]:
    """The same tick with and without the flow wrapper, each on its own copy of the data."""
    from prefect import flow

    from flows import runtime
    from flows.journey_flows import journey_tick
    from journeys.engine import tick

    plain_db = folder / "plain.db"
    flow_db = folder / "flow.db"
    copy_migrated(source, plain_db)
    copy_migrated(source, flow_db)

    runtime.reset()
    services = default_services()
    factory = sessionmaker(make_engine(f"sqlite:///{plain_db}"), expire_on_commit=False)
    start = time.perf_counter()
    sent = sum(tick(factory, get_journey(n), NOW, services).messages for n in JOURNEYS)
    plain_s = time.perf_counter() - start

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        return None

    start = time.perf_counter()
    warm_up()  # starts the local ephemeral API: a once-per-process cost, reported apart
    api_start_s = time.perf_counter() - start
    with environment({"LOYALFLOW_DATABASE_URL": f"sqlite:///{flow_db}"}):
        runtime.reset()
        start = time.perf_counter()
        flow_sent = sum(sum(journey_tick(n, NOW.isoformat())["sent"].values()) for n in JOURNEYS)
        flow_s = time.perf_counter() - start
        runtime.reset()
    return {"members": members, "plain_s": round(plain_s, 3), "flow_s": round(flow_s, 3),
            "share": round(max(0.0, flow_s - plain_s) / flow_s, 4) if flow_s else 0.0,
            "api_start_s": round(api_start_s, 3), "messages_plain": sent, "messages_flow": flow_sent}


def with_addresses(samples: list[Sample], url: str) -> list[Sample]:
    """The channel and address each sampled message went out on (from the ledger and members)."""
    from sqlalchemy import text

    engine = make_engine(url)
    out = []
    with engine.connect() as conn:
        for s in samples:
            rid = s.context["recipient_id"]
            email, phone = conn.execute(text("SELECT email, phone FROM members WHERE id = :i"), {"i": rid}).one()
            channel = "sms" if s.step.startswith("sms") else "email"
            to = phone if channel == "sms" else email
            if to and not s.step.startswith("push"):
                out.append(replace(s, channel=channel, to=to))
    engine.dispose()
    return out


# --- one run ------------------------------------------------------------------------------------

def run(members: int, *, compare: bool, sample: int, prefect_members: int, concurrency: int,
        postgres: bool, latency: float) -> dict[str, Any]:
    from channels.settings import channel_settings

    source = cached_sqlite(members, SEED)
    result: dict[str, Any] = {"members": members, "tick_at": NOW.isoformat(), "latency_ms": latency * 1000,
                              "concurrency": concurrency, "cpus": os.cpu_count(),
                              "load_avg_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_", dir=RESULTS) as tmp, Fakes(latency) as fakes, \
            environment(fakes.environment(concurrency) | {"PREFECT_HOME": str(Path(tmp) / "prefect"),
                                                          "DO_NOT_TRACK": "1",
                                                          "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                                                          "PREFECT_LOGGING_LEVEL": "WARNING"}):
        folder = Path(tmp)
        db = fresh_copy(source, folder)
        figures, renderer, services = run_loyalflow(f"sqlite:///{db}", keep=sample if compare else 0)
        result["sqlite"] = figures
        result["fakes"] = fakes.counts()  # the main run's: nothing may have arrived twice
        fakes.reset()
        if postgres:
            result["postgresql"] = run_postgres(db=source, keep=0)
            fakes.reset()
        if compare:
            settings = channel_settings()
            samples = with_addresses(renderer.samples, f"sqlite:///{db}")
            naive_s = naive_send(samples, settings, first_id=2_000_000_000)
            result["naive"] = _versus(len(samples), naive_s, figures["messages_per_s"])
            from flows import runtime

            # one local API for every Prefect run here, stopped (logs drained) before its home is deleted:
            # no shutdown tracebacks at exit
            started = time.perf_counter()
            with runtime.local_api():
                api_start_s = time.perf_counter() - started
                result["prefect"] = prefect_share(source, folder, members) if members <= prefect_members else \
                    prefect_share(cached_sqlite(prefect_members, SEED), folder, prefect_members)
                result["prefect"]["api_start_s"] = round(result["prefect"]["api_start_s"] + api_start_s, 3)
                per_task_s = task_per_recipient(samples, services, first_id=3_000_000_000)
            result["task_per_recipient"] = _versus(len(samples), per_task_s, figures["messages_per_s"])
    result["load_avg_after"] = round(os.getloadavg()[0], 2)
    return result


def _versus(count: int, seconds: float, ours_per_s: float) -> dict[str, Any]:
    per_s = count / seconds if seconds else 0.0
    return {"sample": count, "seconds": round(seconds, 3), "per_s": round(per_s, 1),
            "speedup": round(ours_per_s / per_s, 1) if per_s else 0.0}


def run_postgres(db: Path, keep: int) -> dict[str, Any] | None:
    with loaded_postgres(db) as loaded:
        if loaded is None:
            return None
        url, load_s = loaded
        figures, _, _ = run_loyalflow(url, keep=keep)
        figures["load_s"] = round(load_s, 1)
        return figures


# --- reporting ----------------------------------------------------------------------------------

def print_run(r: dict[str, Any]) -> None:
    for db in ("sqlite", "postgresql"):
        f = r.get(db)
        if not f:
            continue
        print(f"{db}, {r['members']:,} members, tick at {r['tick_at']}, fakes answering after "
              f"{r['latency_ms']:.0f} ms, adapter concurrency {r['concurrency']}")
        print(f"  enroll        {f['enrolled']:>9,} enrollments in {f['enroll_s']:8.2f} s")
        print(f"  advance       {f['advanced']:>9,} enrollments in {f['advance_s']:8.2f} s = {f['advance_per_s']:>9,.0f}/s")
        print(f"  render        {f['render']['count']:>9,} messages    in {f['render']['seconds']:8.2f} s = "
              f"{f['render']['per_s']:>9,.0f}/s")
        print(f"  delivery      {f['delivery']['count']:>9,} messages    in {f['delivery']['seconds']:8.2f} s = "
              f"{f['delivery']['per_s']:>9,.0f}/s")
        print(f"  end to end    {f['messages']:>9,} sent        in {f['total_s']:8.2f} s = {f['messages_per_s']:>9,.0f}/s")
        print(f"  peak RSS      {f['peak_rss_mib']:,.0f} MiB")
    if "naive" in r:
        n, t, p = r["naive"], r["task_per_recipient"], r["prefect"]
        print(f"  naive way     {n['sample']:>9,} messages    in {n['seconds']:8.2f} s = {n['per_s']:>9,.1f}/s "
              f"(loyalflow x{n['speedup']})")
        print(f"  task/recipient{t['sample']:>9,} messages    in {t['seconds']:8.2f} s = {t['per_s']:>9,.1f}/s "
              f"(loyalflow x{t['speedup']})")
        print(f"  Prefect share {p['share'] * 100:.1f}% at {p['members']:,} members (flow {p['flow_s']:.2f} s, plain "
              f"{p['plain_s']:.2f} s; local API start {p['api_start_s']:.1f} s apart)")
    print(f"  fakes: {r['fakes']}; load average {r['load_avg_before']} -> {r['load_avg_after']}")


def scaling(sizes: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """Each size in its own process (clean peak RSS); the comparisons only at the largest."""
    runs = []
    for n in sizes:
        with tempfile.NamedTemporaryFile(suffix=".json", dir=RESULTS, delete=False) as out:
            path = Path(out.name)
        cmd = [sys.executable, "-m", "tests.bench.bench_pipeline", "--members", str(n), "--json", str(path),
               "--concurrency", str(args.concurrency), "--sample", str(args.sample),
               "--prefect-members", str(args.prefect_members)]
        if n != max(sizes):
            cmd.append("--no-compare")
        if args.postgres and n == max(sizes):
            cmd.append("--postgres")
        subprocess.run(cmd, check=True)
        runs.append(json.loads(path.read_text()))
        path.unlink()
    return {"runs": runs}


def chart(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = [r["members"] for r in runs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(members, [r["sqlite"]["total_s"] for r in runs], "o-", label="loyalflow tick (s)")
    base = runs[0]
    left.plot(members, [base["sqlite"]["total_s"] * m / base["members"] for m in members], "--", label="linear")
    left.set(xscale="log", yscale="log", xlabel="members", ylabel="seconds", title="Tick time")
    left.legend()
    right.plot(members, [r["sqlite"]["peak_rss_mib"] for r in runs], "o-", label="peak RSS (MiB)")
    right.axhline(500, color="red", linestyle=":", label="target 500 MB")
    right.set(xscale="log", xlabel="members", ylabel="MiB", title="Peak memory")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def results_markdown(runs: list[dict[str, Any]], command: str, png: str) -> str:
    big = runs[-1]
    f = big["sqlite"]
    lines = [
        "# Pipeline benchmark", "",
        f"Produced by `{command}` on {big['cpus']} CPUs (shared; load average {big['load_avg_before']} "
        f"before the largest run). SQLite, one tick of points-expiring and win-back at {big['tick_at']}, real "
        f"templates, gate and SendGrid/Twilio SDK adapters sending to fakes on 127.0.0.1 answering after "
        f"{big['latency_ms']:.0f} ms, concurrency {big['concurrency']}.", "",
        "| members | enroll s | advance /s | render /s | delivery /s | messages | tick s | end to end msg/s | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        s = r["sqlite"]
        lines.append(f"| {r['members']:,} | {s['enroll_s']:.2f} | {s['advance_per_s']:,.0f} | {s['render']['per_s']:,.0f} "
                     f"| {s['delivery']['per_s']:,.0f} | {s['messages']:,} | {s['total_s']:.1f} "
                     f"| {s['messages_per_s']:,.0f} | {s['peak_rss_mib']:,.0f} |")
    if big.get("postgresql"):
        p = big["postgresql"]
        lines += ["", f"PostgreSQL at {big['members']:,}: enroll {p['enroll_s']:.2f} s, advance {p['advance_per_s']:,.0f}/s, "
                  f"end to end {p['messages_per_s']:,.0f} msg/s, peak RSS {p['peak_rss_mib']:,.0f} MiB."]
    if "naive" in big:
        n, t, p = big["naive"], big["task_per_recipient"], big["prefect"]
        lines += [
            "", "| way (same data, same fakes) | sample | msg/s | loyalflow speed-up |", "|---|---:|---:|---:|",
            f"| loyalflow (whole tick) | {f['messages']:,} | {f['messages_per_s']:,.0f} | 1 |",
            f"| naive: Jinja into MJML, compile, SDK send, one at a time | {n['sample']:,} | {n['per_s']:,.1f} | {n['speedup']}x |",
            f"| a Prefect task per recipient | {t['sample']:,} | {t['per_s']:,.1f} | {t['speedup']}x |",
            "", f"Prefect's share: {p['share'] * 100:.1f}% (the same tick at {p['members']:,} members: "
            f"{p['flow_s']:.1f} s through the `journey-tick` flow, {p['plain_s']:.1f} s as plain engine calls; "
            f"starting the local ephemeral API, once per process, took {p['api_start_s']:.1f} s more).",
        ]
    lines += ["", f"![scaling]({png})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000, help="members of demo data (README figures: 1000000)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL, when installed")
    parser.add_argument("--scaling", help="comma-separated sizes: the curve, a PNG and tests/bench/RESULTS.md")
    parser.add_argument("--no-compare", action="store_true", help="skip the naive, per-task and Prefect runs")
    parser.add_argument("--sample", type=int, default=300, help="messages for the naive and per-task ways")
    parser.add_argument("--prefect-members", type=int, default=100_000,
                        help="size of the with/without-flow comparison (a copy of the data, ticked twice)")
    parser.add_argument("--concurrency", type=int, default=128, help="adapter threads (LOYALFLOW_CONCURRENCY)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the fakes take to answer")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)

    if args.scaling:
        sizes = sorted(int(s) for s in args.scaling.split(","))
        out = scaling(sizes, args)
        png = Path("tests/bench/pipeline_context_scaling.png")  # pipeline_scaling.png is bench_versus's
        chart(out["runs"], png)
        command = "python -m tests.bench.bench_pipeline " + " ".join(argv if argv is not None else sys.argv[1:])
        md = results_markdown(out["runs"], command, png.name)
        results = Path("tests/bench/RESULTS.md")
        from tests.bench.bench_versus import END, START

        kept = results.read_text(encoding="utf-8") if results.exists() else ""
        if START in kept and END in kept:  # bench_versus's section (the competent baseline) stays first
            head, _, rest = md.partition("\n")
            md = f"{head}\n\n{kept[kept.index(START):kept.index(END) + len(END)]}\n{rest}"
        results.write_text(md, encoding="utf-8")
        print(md)
    else:
        out = run(args.members, compare=not args.no_compare, sample=args.sample,
                  prefect_members=args.prefect_members, concurrency=args.concurrency, postgres=args.postgres,
                  latency=args.latency)
        print_run(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
