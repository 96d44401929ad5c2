"""The demo tiers' benefits in every language the demo's members read.

A tier's `benefits` are data of the loyalty system, so their translations are data too: each benefit
is stored as `{"en": ..., "fr": ..., ...}` and the journeys' enricher picks the member's language
(journeys/context_extras.py). A plain string is shown as is, in every language.
"""

from __future__ import annotations

TRANSLATIONS: dict[str, dict[str, str]] = {
    "1 point per unit spent": {
        "fr": "1 point par unité dépensée", "de": "1 Punkt pro ausgegebener Einheit",
        "es": "1 punto por cada unidad gastada", "ja": "ご利用1単位ごとに1ポイント"},
    "1.25 points per unit spent": {
        "fr": "1,25 point par unité dépensée", "de": "1,25 Punkte pro ausgegebener Einheit",
        "es": "1,25 puntos por cada unidad gastada", "ja": "ご利用1単位ごとに1.25ポイント"},
    "1.5 points per unit spent": {
        "fr": "1,5 point par unité dépensée", "de": "1,5 Punkte pro ausgegebener Einheit",
        "es": "1,5 puntos por cada unidad gastada", "ja": "ご利用1単位ごとに1.5ポイント"},
    "2 points per unit spent": {
        "fr": "2 points par unité dépensée", "de": "2 Punkte pro ausgegebener Einheit",
        "es": "2 puntos por cada unidad gastada", "ja": "ご利用1単位ごとに2ポイント"},
    "Birthday treat": {
        "fr": "Une attention pour votre anniversaire", "de": "Eine Überraschung zum Geburtstag",
        "es": "Un detalle por tu cumpleaños", "ja": "お誕生日の特典"},
    "Free standard shipping": {
        "fr": "Livraison standard offerte", "de": "Kostenloser Standardversand",
        "es": "Envío estándar gratis", "ja": "通常配送無料"},
    "Free express shipping": {
        "fr": "Livraison express offerte", "de": "Kostenloser Expressversand",
        "es": "Envío exprés gratis", "ja": "お急ぎ便配送無料"},
    "Early access to sales": {
        "fr": "Accès en avant-première aux soldes", "de": "Früher Zugang zum Sale",
        "es": "Acceso anticipado a las rebajas", "ja": "セールへの先行アクセス"},
    "Priority support": {
        "fr": "Service client prioritaire", "de": "Bevorzugter Kundenservice",
        "es": "Atención al cliente prioritaria", "ja": "優先サポート"},
    "Dedicated concierge": {
        "fr": "Un concierge dédié", "de": "Persönlicher Concierge",
        "es": "Conserje personal", "ja": "専属コンシェルジュ"},
    "Annual gift": {
        "fr": "Un cadeau chaque année", "de": "Jährliches Geschenk",
        "es": "Un regalo cada año", "ja": "毎年のギフト"},
}


def localized(benefit: str) -> dict[str, str] | str:
    """`benefit` in every language we have it in (English is the catalogue's own text)."""
    found = TRANSLATIONS.get(benefit)
    return {"en": benefit, **found} if found else benefit
