"""Benchmark: personalised points-expiring emails per second on one core.

Compiled once (MJML -> HTML at load, Jinja per recipient) against MJML compiled per recipient
(Jinja over the MJML source, then MJML -> HTML and CSS inlining for each one). Each recipient has
its own name, points, balance, expiry and locale, as a real mailing would.

    python -m tests.bench.bench_render [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timedelta, timezone

from templates.environment import html_env
from templates.jinja_tools import compile_template
from templates.library import TemplateLibrary
from templates.mjml_compiler import compile_mjml
from templates.samples import sample_context

JOURNEY, STEP = "points_expiring", "email_7d"
LOCALES = ("en", "fr", "fr-CA", "de", "es")
NAMES = ("Camille", "Noah", "Zoë", "Mateo", "Lena", "Amira", "Yuki", None, "Oliver", "Sofía")


def recipients(count: int) -> list[tuple[str, dict[str, object]]]:
    base = datetime(2026, 12, 1, 4, 59, tzinfo=timezone.utc)
    out = []
    for i in range(count):
        locale = LOCALES[i % len(LOCALES)]
        context = sample_context(JOURNEY, locale, first_name=NAMES[i % len(NAMES)])
        context.update(recipient_id=i, points=100 + (i * 37) % 5000, balance=5000 + (i * 91) % 20000,
                       expires_at=base + timedelta(days=i % 7))
        out.append((locale, context))
    return out


def per_second(render, people, seconds: float) -> tuple[float, int]:
    done, start = 0, time.perf_counter()
    while True:
        for locale, context in people:
            render(locale, context)
        done += len(people)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per variant (default 3)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    lib = TemplateLibrary.load()
    people = recipients(1000)

    def compiled_once(locale: str, context: dict[str, object]) -> None:
        lib.render(JOURNEY, STEP, locale, context)

    # The per-recipient variant renders the same source files through Jinja, then compiles MJML.
    sources = {}
    for locale in LOCALES:
        compiled = lib.compiled(lib.resolve(JOURNEY, STEP, locale))
        sources[locale] = (compiled, compile_template(html_env(), compiled.body_source, compiled.file.name))

    def compiled_per_recipient(locale: str, context: dict[str, object]) -> None:
        compiled, body = sources[locale]
        values = dict(context, locale=locale)
        values["preheader"] = compiled.preheader.render(values)
        compiled.subject.render(values)
        html = compile_mjml(body.render(values), lang=locale).html
        assert html

    fast, n_fast = per_second(compiled_once, people, args.seconds)
    slow, n_slow = per_second(compiled_per_recipient, people[:200], args.seconds)
    sample = lib.render(JOURNEY, STEP, "en", people[0][1])
    print(f"points_expiring/email_7d, {len(LOCALES)} locales, one core, HTML {len(sample.html):,} bytes + text part")
    print(f"{'variant':<34}{'emails/s':>12}{'µs/email':>12}{'rendered':>12}")
    print(f"{'compiled once, Jinja per member':<34}{fast:>12,.0f}{1e6 / fast:>12.1f}{n_fast:>12,}")
    print(f"{'MJML compiled per member':<34}{slow:>12,.0f}{1e6 / slow:>12.1f}{n_slow:>12,}")
    print(f"speed-up: {fast / slow:.1f}x; target >= 20,000/s compiled once: {'met' if fast >= 20000 else 'NOT met'}")


if __name__ == "__main__":
    main()
