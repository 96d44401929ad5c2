"""The fixed vocabulary of the demo data: locales, names, currencies, phone ranges, tiers, stores.

Kept apart from the generators so that a test can check the data against the same source of truth
(which country and time zones go with a locale, which currency a store charges in).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
"""Reserved for documentation (RFC 2606): a demo address can never reach a real person."""


@dataclass(frozen=True)
class Currency:
    code: str
    minor_per_unit: int
    """100 for cents; 1 for yen."""
    minor_per_point: int
    """Minor units spent for one point, and for one unit of the program currency in tier spend:
    one point per dollar/euro/pound, one point per 100 yen."""


CURRENCIES = {
    c.code: c
    for c in (
        Currency("USD", 100, 100), Currency("GBP", 100, 100), Currency("EUR", 100, 100),
        Currency("CAD", 100, 100), Currency("AUD", 100, 100), Currency("NZD", 100, 100),
        Currency("JPY", 1, 100),
    )
}


@dataclass(frozen=True)
class PhonePlan:
    """Number ranges checked with `phonenumbers`: every completion of a prefix is a valid number of
    the wanted type (mobile; fixed line for the deliberately bad 'landline' contacts)."""

    country_code: str
    mobile_prefixes: tuple[str, ...]
    mobile_length: int
    """National significant number length, prefix included."""
    landline_prefixes: tuple[str, ...] = ()
    landline_length: int = 0

    @property
    def has_landlines(self) -> bool:
        """Only where a landline is distinguishable from a mobile (not in North America)."""
        return bool(self.landline_prefixes)


def _us_prefixes(areas: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(a + str(d) for a in areas for d in range(2, 10))  # exchange codes start with 2-9


PHONE_PLANS = {
    "US": PhonePlan("1", _us_prefixes(("212", "646", "718", "917", "312", "773", "512", "213", "310", "415", "206")), 10),
    "CA": PhonePlan("1", _us_prefixes(("416", "647", "437", "905", "514", "438", "604")), 10),
    "GB": PhonePlan("44", ("740", "741", "742", "743", "744", "746", "747", "748", "749", "751", "753", "754",
                           "755", "756", "757", "758", "759", "771", "772", "773", "774", "775", "776", "777",
                           "780", "781", "784", "785", "786", "787", "788", "789", "790", "792", "794", "795",
                           "796", "797", "798", "799"), 10, ("207946",), 10),
    "FR": PhonePlan("33", ("60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77", "78", "79"),
                    9, ("1",), 9),
    "DE": PhonePlan("49", ("151", "152", "155", "157", "159", "160", "162", "163", "170", "171", "172", "173",
                           "174", "175", "176", "177", "178", "179"), 11, ("30",), 10),
    "ES": PhonePlan("34", ("60", "61", "62", "63", "64", "65", "66", "67", "68", "69", "71", "72", "73", "74"),
                    9, ("91",), 9),
    "AU": PhonePlan("61", ("40", "41", "42", "43", "46"), 9, ("29", "28"), 9),
    "NZ": PhonePlan("64", ("21",), 9, ("93", "94", "95", "96", "98", "99"), 8),
    "JP": PhonePlan("81", tuple(p + str(d) for p in ("90", "80", "70") for d in range(1, 10)), 10,
                    tuple("3" + str(d) for d in range(1, 10)), 9),
}


def ascii_fold(text: str) -> str:
    """'Zoé Núñez' -> 'zoe nunez': the local part of a demo email address."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@dataclass(frozen=True)
class Locale:
    tag: str
    country: str
    currency: str
    zones: tuple[tuple[str, float], ...]
    """IANA time zones of the locale's country with their share of its members."""
    share: float
    """Share of all members."""
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    ios_share: float = 0.45
    romanised: dict[str, str] | None = None
    """For scripts without a Latin form: the romanised spelling used in email addresses."""

    def email_name(self, name: str) -> str:
        if self.romanised and name in self.romanised:
            return self.romanised[name]
        return "".join(ch for ch in ascii_fold(name) if ch.isalnum())


_EN_FIRST = ("James", "Mary", "Olivia", "Liam", "Emma", "Noah", "Ava", "Sophia", "Mason", "Isabella", "Ethan",
             "Mia", "Lucas", "Amelia", "Harper", "Elijah", "Chloe", "Daniel", "Grace", "Henry", "Zoë", "Renée",
             "José", "Aaliyah", "Mateo", "Priya", "Wei", "Fatima", "Connor", "Siobhán")
_EN_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez", "Lopez",
            "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
            "Harris", "Clark", "Lewis", "Nguyen", "O'Brien", "Patel", "Kim", "Chen", "Müller", "Peña")
_GB_FIRST = ("Oliver", "George", "Arthur", "Amelia", "Isla", "Ava", "Freddie", "Poppy", "Harry", "Lily", "Jack",
             "Ivy", "Alfie", "Florence", "Archie", "Rosie", "Theo", "Evie", "Niamh", "Eilidh", "Rhys", "Seren",
             "Chloë", "Aoife", "Mohammed", "Imogen", "Charlie", "Willow", "Hugo", "Maisie")
_GB_LAST = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
            "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson",
            "Clarke", "Hughes", "Edwards", "Khan", "Murphy", "O'Connor", "MacDonald", "Llewellyn", "Ó Briain",
            "Fitzgerald")
_FR_FIRST = ("Gabriel", "Léo", "Raphaël", "Louis", "Jules", "Adam", "Lucas", "Hugo", "Arthur", "Noé", "Jade",
             "Louise", "Emma", "Alice", "Chloé", "Léa", "Manon", "Inès", "Zoé", "Hélène", "Camille", "Océane",
             "Anaïs", "Gaëlle", "Thérèse", "François", "Jérôme", "Benoît", "Maëlys", "Éloïse")
_FR_LAST = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
            "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
            "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Chevalier", "Géraud")
_CA_FIRST = ("Félix", "William", "Noah", "Thomas", "Liam", "Émile", "Léo", "Olivia", "Alice", "Charlotte",
             "Florence", "Béatrice", "Zoé", "Rosalie", "Éléonore", "Mathis", "Samuel", "Jacob", "Juliette",
             "Maëlle", "Xavier", "Gabrielle", "Étienne", "Frédérique", "Anaïs", "Loïc", "Mélodie", "Rémi",
             "Sébastien", "Joëlle")
_CA_LAST = ("Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
            "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Paquette", "Girard",
            "Simard", "Boucher", "Caron", "Beaulieu", "Cloutier", "Dubé", "Poirier", "Fournier", "Lapointe",
            "Leclerc", "Lefebvre", "Thériault")
_DE_FIRST = ("Noah", "Leon", "Paul", "Matteo", "Ben", "Elias", "Finn", "Felix", "Emilia", "Sophia", "Emma",
             "Hannah", "Lina", "Mia", "Marie", "Lea", "Jürgen", "Jörg", "Björn", "Sönke", "Käthe", "Günther",
             "Uwe", "Anja", "Jonas", "Lukas", "Maximilian", "Greta", "Ida", "Charlotte")
_DE_LAST = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
            "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
            "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner",
            "Krause", "Köhler", "Weiß")
_ES_FIRST = ("Hugo", "Martín", "Lucas", "Mateo", "Leo", "Daniel", "Alejandro", "Pablo", "Manuel", "Álvaro",
             "Lucía", "Sofía", "Martina", "María", "Julia", "Paula", "Valeria", "Emma", "Daniela", "Carla",
             "Inés", "Begoña", "Ramón", "Jesús", "Íñigo", "Nuria", "Ángela", "José", "Adrián", "Aitana")
_ES_LAST = ("García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
            "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Alonso",
            "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil", "Ramírez", "Serrano",
            "Blanco", "Núñez")
_AU_FIRST = ("Oliver", "Noah", "Jack", "William", "Leo", "Lucas", "Thomas", "Henry", "Charlotte", "Amelia",
             "Isla", "Olivia", "Mia", "Ava", "Grace", "Matilda", "Harper", "Zoe", "Ruby", "Chloe", "Cooper",
             "Lachlan", "Jarrah", "Kirra", "Mackenzie", "Hamish", "Ella", "Sienna", "Archer", "Willow")
_AU_LAST = ("Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin", "White",
            "Anderson", "Walker", "Thompson", "Thomas", "Lee", "Ryan", "Kelly", "King", "Harris", "Robinson",
            "Campbell", "Clarke", "Mitchell", "Young", "Wright", "Murphy", "O'Neill", "Singh", "Tran", "Papadopoulos")
_NZ_FIRST = ("Oliver", "Jack", "Noah", "Leo", "George", "Charlie", "Nikau", "Ari", "Mia", "Isla", "Charlotte",
             "Amelia", "Olivia", "Aroha", "Manaia", "Anahera", "Tama", "Mere", "Wiremu", "Hine", "Ruby", "Lily",
             "Harper", "Ella", "Luca", "Hunter", "Māia", "Tāne", "Kahu", "Ngaio")
_NZ_LAST = ("Smith", "Wilson", "Williams", "Brown", "Taylor", "Jones", "Singh", "Anderson", "Thompson", "Walker",
            "Ngata", "Parata", "Tipene", "Te Awa", "Kereama", "Harris", "Martin", "King", "Campbell", "Young",
            "Clark", "Wright", "Scott", "Robinson", "Mitchell", "Hōhepa", "Rāwiri", "Edwards", "Hughes", "Turner")
_JP_NAMES_FIRST = {"陽翔": "haruto", "蓮": "ren", "湊": "minato", "大和": "yamato", "悠真": "yuma", "陽葵": "himari",
                   "凛": "rin", "結菜": "yuna", "葵": "aoi", "芽依": "mei", "翔太": "shota", "美咲": "misaki",
                   "健太": "kenta", "さくら": "sakura", "ゆい": "yui", "Haruka": "haruka", "Kenji": "kenji",
                   "Yuki": "yuki", "Aiko": "aiko", "Takumi": "takumi"}
_JP_NAMES_LAST = {"佐藤": "sato", "鈴木": "suzuki", "高橋": "takahashi", "田中": "tanaka", "伊藤": "ito",
                  "渡辺": "watanabe", "山本": "yamamoto", "中村": "nakamura", "小林": "kobayashi", "加藤": "kato",
                  "吉田": "yoshida", "山田": "yamada", "佐々木": "sasaki", "山口": "yamaguchi", "松本": "matsumoto",
                  "Inoue": "inoue", "Kimura": "kimura", "Hayashi": "hayashi", "Shimizu": "shimizu", "Mori": "mori"}

LOCALES: tuple[Locale, ...] = (
    Locale("en-US", "US", "USD", (("America/New_York", 0.42), ("America/Chicago", 0.26), ("America/Los_Angeles", 0.32)),
           0.38, _EN_FIRST, _EN_LAST),
    Locale("en-GB", "GB", "GBP", (("Europe/London", 1.0),), 0.12, _GB_FIRST, _GB_LAST),
    Locale("fr-FR", "FR", "EUR", (("Europe/Paris", 1.0),), 0.10, _FR_FIRST, _FR_LAST, ios_share=0.35),
    Locale("fr-CA", "CA", "CAD", (("America/Toronto", 1.0),), 0.06, _CA_FIRST, _CA_LAST),
    Locale("de-DE", "DE", "EUR", (("Europe/Berlin", 1.0),), 0.10, _DE_FIRST, _DE_LAST, ios_share=0.35),
    Locale("es-ES", "ES", "EUR", (("Europe/Madrid", 1.0),), 0.07, _ES_FIRST, _ES_LAST, ios_share=0.25),
    Locale("en-AU", "AU", "AUD", (("Australia/Sydney", 1.0),), 0.07, _AU_FIRST, _AU_LAST, ios_share=0.55),
    Locale("en-NZ", "NZ", "NZD", (("Pacific/Auckland", 1.0),), 0.03, _NZ_FIRST, _NZ_LAST),
    Locale("ja-JP", "JP", "JPY", (("Asia/Tokyo", 1.0),), 0.07, tuple(_JP_NAMES_FIRST), tuple(_JP_NAMES_LAST),
           ios_share=0.70, romanised={**_JP_NAMES_FIRST, **_JP_NAMES_LAST}),
)

@dataclass(frozen=True)
class Zone:
    """One (locale, time zone) pair: the unit members are drawn from and stores are placed in."""

    index: int
    locale: Locale
    name: str
    share: float


ZONES: tuple[Zone, ...] = tuple(
    Zone(i, loc, name, loc.share * weight)
    for i, (loc, name, weight) in enumerate((loc, name, w) for loc in LOCALES for name, w in loc.zones)
)


@dataclass(frozen=True)
class TierSpec:
    code: str
    name: str
    rank: int
    threshold_spend: int
    benefits: tuple[str, ...]


TIERS: tuple[TierSpec, ...] = (
    TierSpec("bronze", "Bronze", 1, 0, ("1 point per unit spent", "Birthday treat")),
    TierSpec("silver", "Silver", 2, 500, ("1.25 points per unit spent", "Birthday treat", "Free standard shipping")),
    TierSpec("gold", "Gold", 3, 1500, ("1.5 points per unit spent", "Free express shipping",
                                       "Early access to sales", "Priority support")),
    TierSpec("platinum", "Platinum", 4, 4000, ("2 points per unit spent", "Free express shipping",
                                               "Early access to sales", "Dedicated concierge",
                                               "Annual gift")),
)
"""threshold_spend: program-currency units over the trailing 12 months (see Currency.minor_per_point)."""


@dataclass(frozen=True)
class StoreSpec:
    code: str
    name: str
    zone: str


# ~40 stores in the locales' countries, placed in the member time zones
STORES: tuple[StoreSpec, ...] = tuple(
    StoreSpec(code, name, zone)
    for zone, items in (
        ("America/New_York", (("NYC-5TH", "Fifth Avenue"), ("NYC-BKN", "Brooklyn Heights"), ("BOS-NEW", "Boston Newbury St"),
                              ("PHL-CTR", "Philadelphia Center City"), ("MIA-BRK", "Miami Brickell"))),
        ("America/Chicago", (("CHI-MAG", "Chicago Magnificent Mile"), ("CHI-WKR", "Chicago Wicker Park"),
                             ("AUS-SOC", "Austin SoCo"), ("DAL-UPT", "Dallas Uptown"))),
        ("America/Los_Angeles", (("LAX-SMO", "Santa Monica"), ("LAX-SLK", "Silver Lake"), ("SFO-UNS", "San Francisco Union Square"),
                                 ("SEA-PIK", "Seattle Pike Place"), ("PDX-PRL", "Portland Pearl District"))),
        ("Europe/London", (("LON-OXF", "London Oxford Street"), ("LON-SHO", "London Shoreditch"), ("MAN-NQ", "Manchester Northern Quarter"),
                           ("EDI-PRS", "Edinburgh Princes Street"), ("BRS-HAR", "Bristol Harbourside"))),
        ("Europe/Paris", (("PAR-MAR", "Paris Le Marais"), ("PAR-OPE", "Paris Opéra"), ("LYO-PRE", "Lyon Presqu'île"),
                          ("BDX-CHA", "Bordeaux Chartrons"))),
        ("America/Toronto", (("MTL-STD", "Montréal Saint-Denis"), ("QUE-STJ", "Québec Saint-Jean"), ("TOR-QST", "Toronto Queen Street"))),
        ("Europe/Berlin", (("BER-MIT", "Berlin Mitte"), ("MUC-MAX", "München Maximilianstraße"), ("HAM-SCH", "Hamburg Schanzenviertel"),
                           ("KOE-EHR", "Köln Ehrenfeld"))),
        ("Europe/Madrid", (("MAD-SAL", "Madrid Salamanca"), ("BCN-GRA", "Barcelona Gràcia"), ("VLC-RUZ", "València Ruzafa"))),
        ("Australia/Sydney", (("SYD-PAD", "Sydney Paddington"), ("SYD-SUR", "Sydney Surry Hills"), ("SYD-BON", "Sydney Bondi"))),
        ("Pacific/Auckland", (("AKL-PON", "Auckland Ponsonby"), ("WLG-CUB", "Wellington Cuba Street"))),
        ("Asia/Tokyo", (("TYO-SHB", "Tokyo Shibuya"), ("TYO-GIN", "Tokyo Ginza"), ("OSA-UMD", "Osaka Umeda"))),
    )
    for code, name in items
)

ZONE_BY_NAME = {z.name: z for z in ZONES}

STORE_OPEN_HOUR = 9
STORE_CLOSE_HOUR = 21
"""Local opening hours: every purchase happens between them, in the store's (= member's) zone."""
