"""`loyalflow report --csv DIR`: every table of the report as `<key>.csv`, safe to open in a spreadsheet.

Store names, journey names and survey answers are text someone typed; a cell that starts with
= + - @, a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets (CSV
injection). Such text cells get a leading single quote. Numbers the report computed (a negative
lift) are written as numbers: they are not text and no spreadsheet runs them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flows.report_decide import Table

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as written to CSV: text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_table(table: Table, path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([safe_cell(c) for c in table.columns])
        for row in table.rows:
            writer.writerow([safe_cell(v) for v in row])
    return path


def write_csv(tables: Iterable[Table], folder: Path) -> list[Path]:
    """One file per table (empty tables too: a header row, so a script finds every file)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_table(t, folder / f"{t.key}.csv") for t in tables]


def report_tables(report: Any) -> list[Table]:
    """The report's own tables (journeys, channels, skips, sends per day, program) as Tables, then the deciding ones."""
    from flows.report import reason_in_words

    journeys = Table("journeys", "Journeys", ["journey", "enrolled", "held out", "messaged", "messaged members",
                                               "converted", "conversion", "holdout converted", "holdout conversion",
                                               "lift"])
    channels = Table("channels", "Channels", ["journey", "channel", "sent", "delivered", "opened", "clicked",
                                               "opted out", "failed"])
    skipped = Table("skipped", "Skipped, by reason", ["journey", "reason", "code", "count"])
    for r in report.journeys:
        journeys.rows.append([r.journey, r.enrolled, r.held_out, r.treated, r.treated_members, r.treated_converted,
                              r.conversion, r.holdout_converted, r.holdout_conversion, r.lift])
        for c in r.channels:
            channels.rows.append([r.journey, c.channel, c.sent, c.delivered, c.opened, c.clicked, c.opted_out,
                                  "; ".join(f"{reason_in_words(k)}: {v}" for k, v in sorted(c.failed.items()))])
        for code, n in sorted(r.skipped.items()):
            skipped.rows.append([r.journey, reason_in_words(code), code, n])
    per_day = Table("sent_per_day", "Sent per day", ["date", "channel", "sent"],
                    [[d, ch, n] for d, ch, n in report.per_day])
    program = Table("program", "Program", ["figure", "value"],
                    [[k, v] for k, v in report.program.items() if not isinstance(v, (list, dict))])
    return [journeys, channels, skipped, per_day, program] + list(getattr(report, "tables", []))
