"""Consent and suppression records: append-only consent history with its current state derived
(records.py), the suppression list (suppression.py), and consent imported from CSV (csv_import.py)."""

from channels.consent.csv_import import ImportReport, RowError, import_consent_csv
from channels.consent.records import current_consent, record_consent
from channels.consent.suppression import suppress, suppressed_addresses

__all__ = [
    "ImportReport",
    "RowError",
    "current_consent",
    "import_consent_csv",
    "record_consent",
    "suppress",
    "suppressed_addresses",
]
