"""The report as one self-contained HTML page: tables and inline SVG charts (matplotlib)."""

from __future__ import annotations

import io
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment  # noqa: E402
from markupsafe import Markup  # noqa: E402

from flows.report import Report, reason_in_words  # noqa: E402

COLOURS = {"email": "#3b6ea5", "sms": "#e07b39", "push": "#5aa05a"}


def _svg(fig: plt.Figure) -> Markup:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buffer.getvalue()
    return Markup(svg[svg.index("<svg"):])  # our own matplotlib output, no user text unescaped


def sends_per_day(report: Report) -> Markup | None:
    if not report.per_day:
        return None
    days = sorted({d for d, _, _ in report.per_day})
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for d, channel, n in report.per_day:
        series[channel or "none"][index[d]] += n
    fig, ax = plt.subplots(figsize=(9, 3))
    bottom = [0] * len(days)
    for channel in sorted(series):
        ax.bar(days, series[channel], bottom=bottom, label=channel, color=COLOURS.get(channel, "#888"), width=0.9)
        bottom = [a + b for a, b in zip(bottom, series[channel])]
    ax.set_title("Messages sent per day and channel")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.autofmt_xdate()
    return _svg(fig)


def funnel(report: Report) -> Markup | None:
    rows = [r for r in report.journeys if r.enrolled]
    if not rows:
        return None
    stages = ["enrolled", "sent", "delivered", "opened", "clicked"]
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.5 * len(rows) * len(stages) / 3))
    y, labels, positions = 0.0, [], []
    for row in rows:
        values = [row.enrolled, sum(c.sent for c in row.channels), sum(c.delivered for c in row.channels),
                  sum(c.opened for c in row.channels), sum(c.clicked for c in row.channels)]
        for stage, value in zip(stages, values):
            ax.barh(y, value, color="#3b6ea5" if stage == "enrolled" else "#7aa6d6")
            ax.text(value, y, f" {value:,}", va="center", fontsize=8)
            labels.append(f"{row.journey} · {stage}")
            positions.append(y)
            y += 1
        y += 0.5
    ax.invert_yaxis()
    ax.set_title("Funnel per journey: enrolled → sent → delivered → opened → clicked")
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.set_yticks(positions, labels, fontsize=8)
    return _svg(fig)


def lift(report: Report) -> Markup | None:
    rows = [r for r in report.journeys if r.conversion is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 3))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [100 * (r.conversion or 0) for r in rows], width=0.4, label="messaged", color="#3b6ea5")
    ax.bar([i + 0.2 for i in x], [100 * (r.holdout_conversion or 0) for r in rows], width=0.4, label="holdout",
           color="#bbbbbb")
    ax.set_xticks(list(x), [r.journey for r in rows])
    ax.set_ylabel(f"% converted within {report.window_days} days")
    ax.set_title("Conversion: messaged members against the holdout (lift)")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def trends(report: Report) -> Markup | None:
    """Sent per week (bars) and attributed purchases per week (line): is it growing, does it pay."""
    table = next((t for t in report.tables if t.key == "trends_weekly"), None)
    if table is None or not table.rows:
        return None
    weeks = [row[0] for row in table.rows]
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar(weeks, [row[1] for row in table.rows], width=5, color="#7aa6d6", label="sent")
    ax.set_ylabel("messages sent")
    other = ax.twinx()
    other.plot(weeks, [row[2] for row in table.rows], color="#e07b39", marker="o", label="attributed purchases")
    other.set_ylabel("attributed purchases")
    ax.set_title("Per week: messages sent and the purchases they brought (last touch)")
    ax.spines[["top"]].set_visible(False)
    other.spines[["top"]].set_visible(False)
    fig.legend(frameon=False, loc="upper left")
    fig.autofmt_xdate()
    return _svg(fig)


def lift_intervals(report: Report) -> Markup | None:
    """Each journey's lift with its confidence interval: an interval across zero is no evidence yet."""
    table = next((t for t in report.tables if t.key == "lift"), None)
    if table is None or not table.rows:
        return None
    i, lo, hi = (table.columns.index(c) for c in ("lift (points)", "ci low (points)", "ci high (points)"))
    rows = table.rows
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.45 * len(rows)))
    for y, row in enumerate(rows):
        colour = "#5aa05a" if row[lo] > 0 else "#c0392b" if row[hi] < 0 else "#888888"
        ax.plot([row[lo], row[hi]], [y, y], color=colour, linewidth=3)
        ax.plot([row[i]], [y], "o", color=colour)
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [row[0] for row in rows])
    ax.invert_yaxis()
    ax.set_xlabel("lift in conversion, points (95% interval)")
    ax.set_title("Lift against the holdout: green is a real gain, grey is not yet known")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def cell(name: str, value: object) -> str:
    """A value of a deciding table, for people: rates as percentages, money with two decimals."""
    from datetime import date, datetime
    from decimal import Decimal

    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and ("rate" in name or "conversion" in name or name == "click-to-open"):
        return pct(value)
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return n(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loyalflow report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#222}
table{border-collapse:collapse;margin:1rem 0;width:100%}th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:right}
th:first-child,td:first-child,td.l{text-align:left}.fig{margin:1.5rem 0}.muted{color:#777}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:8px;padding:.8rem 1rem;min-width:10rem}
.card b{font-size:1.4rem;display:block}
table.decide{font-size:.85rem}
</style></head><body>
<h1>loyalflow report</h1>
<p class="muted">as of {{ report.generated_for.strftime("%Y-%m-%d %H:%M UTC") }}{% if report.since %}, messages since {{ report.since.date() }}{% endif %};
conversion = a purchase or redemption within {{ report.window_days }} days of the first message (holdout: of enrolling).</p>
<h2>Program</h2><div class="cards">
<div class="card">active members<b>{{ "{:,}".format(report.program.active_members) }}</b></div>
<div class="card">retention (90 days)<b>{{ pct(report.program.retention_rate) }}</b></div>
<div class="card">redemption rate<b>{{ pct(report.program.redemption_rate) }}</b></div>
<div class="card">avg spend / buying member (12 mo)<b>{{ money(report.program.average_spend_per_member, report.program.spend_currency) }}</b>{% for x in report.program.spend_by_currency[:3] %}<span class="muted">{{ money(x.average, x.currency) }} · {{ n(x.members) }} buyers in {{ x.currency }}</span><br>{% endfor %}</div>
<div class="card">members opted out (from a message)<b>{{ n(report.program.members_opted_out) }}</b></div>
<div class="card">members who withdrew a consent (any source)<b>{{ n(report.program.consent_withdrawn) }}</b></div>
</div>
{% for chart in charts if chart %}<div class="fig">{{ chart }}</div>{% endfor %}
<h2>Journeys</h2>
<table><tr><th>journey</th><th>enrolled</th><th>held out</th><th>messaged</th><th>conversion</th><th>holdout conversion</th><th>lift</th></tr>
{% for r in report.journeys %}<tr><td>{{ r.journey }}</td><td>{{ n(r.enrolled) }}</td><td>{{ n(r.held_out) }}</td><td>{{ n(r.treated) }}</td>
<td>{{ pct(r.conversion) }}</td><td>{{ pct(r.holdout_conversion) }}</td><td>{{ pts(r.lift) }}</td></tr>{% endfor %}</table>
<h2>Channels</h2>
<table><tr><th>journey</th><th>channel</th><th>sent</th><th>delivered</th><th>opened</th><th>clicked</th><th>opted out</th><th>failed</th></tr>
{% for r in report.journeys %}{% for c in r.channels %}<tr><td>{{ r.journey }}</td><td class="l">{{ c.channel }}</td><td>{{ n(c.sent) }}</td>
<td>{{ n(c.delivered) }}</td><td>{{ n(c.opened) }}</td><td>{{ n(c.clicked) }}</td><td>{{ n(c.opted_out) }}</td>
<td class="l">{% for k, v in c.failed.items() %}{{ words(k) }}: {{ n(v) }}{% if not loop.last %}; {% endif %}{% endfor %}</td></tr>{% endfor %}{% endfor %}
<tr><th>total</th><td></td><th>{{ n(total("sent")) }}</th><th>{{ n(total("delivered")) }}</th><th>{{ n(total("opened")) }}</th><th>{{ n(total("clicked")) }}</th><th>{{ n(total("opted_out")) }}</th><td></td></tr></table>
<h2>Skipped, by reason</h2>
<table><tr><th>journey</th><th>reason</th><th>count</th></tr>
{% for r in report.journeys %}{% for k, v in r.skipped.items() %}<tr><td>{{ r.journey }}</td><td class="l" title="{{ k }}">{{ words(k) }}</td><td>{{ n(v) }}</td></tr>{% endfor %}{% endfor %}</table>
{% for t in report.tables %}<h2 id="{{ t.key }}">{{ t.title }}</h2>{% if t.note %}<p class="muted">{{ t.note }}</p>{% endif %}
{% if t.rows %}<table class="decide"><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for v in row %}<td{% if loop.first %} class="l"{% endif %}>{{ cell(t.columns[loop.index0], v) }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p class="muted">No data yet.</p>{% endif %}{% endfor %}
</body></html>
"""


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def pts(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f} pts"


def money(value: float | None, currency: str | None = None) -> str:
    """An amount with its currency (Babel, English), e.g. `$1,234.50` or `€1,234.50`."""
    if value is None:
        return "–"
    if not currency:
        return f"{value:,.2f}"
    from babel.numbers import format_currency

    return format_currency(value, currency, locale="en")


def n(value: int | None) -> str:
    """A count with thousands separators."""
    return "–" if value is None else f"{value:,}"


def render_html(report: Report) -> str:
    env = Environment(autoescape=True)
    template = env.from_string(PAGE)
    def total(name: str) -> int:
        return sum(getattr(c, name) for r in report.journeys for c in r.channels)

    return template.render(report=report, charts=[sends_per_day(report), funnel(report), lift(report), trends(report),
                                                     lift_intervals(report)], cell=cell,
                           pct=pct, pts=pts, money=money, n=n, words=reason_in_words, total=total)
