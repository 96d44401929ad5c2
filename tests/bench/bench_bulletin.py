"""Benchmark: the staff bulletin's per-store week and the report's read rates and NPS, on a demo database.

    LOYALFLOW_DATABASE_URL=sqlite:///loyalflow-demo/loyalflow.db python -m tests.bench.bench_bulletin

Prints the time of `store_week_figures` (best of 3) for the week before the latest purchase, and of
`read_rates` + `nps_summary`, with the database's size and the week's totals.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audiences.db import make_engine
from audiences.models import Member, Purchase
from journeys.bulletin import store_week_figures
from journeys.surveys import nps_summary, read_rates


def main() -> None:
    engine = make_engine()
    with Session(engine) as s:
        now = s.scalar(select(func.max(Purchase.purchased_at)))
        if now is None:
            raise SystemExit("no purchases in this database: run `loyalflow demo-data` first")
        members = s.scalar(select(func.count()).select_from(Member))
        purchases = s.scalar(select(func.count()).select_from(Purchase))
        times = []
        for _ in range(3):
            started = time.perf_counter()
            figures = store_week_figures(s, now - timedelta(days=7), now)
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        read_rates(s, now - timedelta(days=7))
        nps_summary(s, now - timedelta(days=7))
        report = time.perf_counter() - started
    print(f"{members:,} members, {purchases:,} purchases, {len(figures)} stores (incl. none): "
          f"store_week_figures {min(times):.2f} s (best of 3); read_rates + nps_summary {report:.3f} s; "
          f"week: {sum(w.enrollments for w in figures.values()):,} enrollments, "
          f"{sum(w.redemptions for w in figures.values()):,} redemptions, "
          f"{sum(w.tier_ups for w in figures.values()):,} tier-ups")


if __name__ == "__main__":
    main()
