"""The fixed facts of the demo chain: product catalogue, affinity groups, stores, calendar effects.

Everything here is deterministic: the catalogue and the affinity groups do not depend on the seed (tests and later
analyses check against them); store sizes, trends, prices and popularity come from the seeded generator passed in.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

# category -> (sku prefix, (budget brand, premium brand), base share of lines, mean extra units per line, items)
_CATALOGUE: dict[str, tuple[str, tuple[str, str], float, float, tuple[tuple[str, float], ...]]] = {
    "Grocery": (
        "GRO",
        ("Pantry Basics", "Casa Verde"),
        0.275,
        0.25,
        (
            ("Spaghetti", 1.79),
            ("Penne", 1.79),
            ("Tomato Pasta Sauce", 2.99),
            ("Basmati Rice", 3.49),
            ("Olive Oil", 7.99),
            ("Canned Tomatoes", 1.29),
            ("Breakfast Cereal", 3.99),
            ("Peanut Butter", 3.49),
            ("Strawberry Jam", 2.99),
            ("Potato Chips", 2.49),
            ("Salsa Dip", 2.79),
            ("Tortilla Chips", 2.29),
            ("Sausages", 4.99),
        ),
    ),
    "Bakery": (
        "BAK",
        ("Daily Loaf", "Artisan Oven"),
        0.14,
        0.15,
        (
            ("White Bread", 2.19),
            ("Wholegrain Bread", 2.79),
            ("Croissants", 3.49),
            ("Bagels", 2.99),
            ("Burger Buns", 2.49),
            ("Hot Dog Rolls", 2.29),
            ("Muffins", 3.99),
            ("Cookies", 2.99),
            ("Baguette", 1.99),
            ("Cinnamon Rolls", 3.79),
            ("Birthday Cake", 11.99),
            ("Donuts", 4.49),
        ),
    ),
    "Dairy": (
        "DAI",
        ("Meadow Farm", "Alpine Gold"),
        0.16,
        0.2,
        (
            ("Whole Milk", 1.49),
            ("Oat Milk", 2.49),
            ("Butter", 3.29),
            ("Cheddar Cheese", 4.49),
            ("Greek Yogurt", 3.99),
            ("Cream Cheese", 2.49),
            ("Eggs (dozen)", 3.29),
            ("Parmesan", 5.99),
            ("Mozzarella", 3.49),
            ("Heavy Cream", 2.99),
            ("Sour Cream", 1.99),
        ),
    ),
    "Beverages": (
        "BEV",
        ("Fizz & Co", "Highland"),
        0.16,
        0.25,
        (
            ("Ground Coffee", 8.99),
            ("Coffee Beans", 9.99),
            ("Green Tea", 3.99),
            ("Cola", 2.49),
            ("Lemon Soda", 2.29),
            ("Sparkling Water", 0.99),
            ("Orange Juice", 3.49),
            ("Apple Juice", 2.99),
            ("Energy Drink", 2.49),
            ("Red Wine", 9.99),
            ("Lager Beer 6-pack", 8.99),
            ("Still Water 6-pack", 3.49),
        ),
    ),
    "Household": (
        "HOU",
        ("HomeCare", "PureNest"),
        0.12,
        0.1,
        (
            ("Dish Soap", 2.99),
            ("Laundry Detergent", 9.99),
            ("Fabric Softener", 5.99),
            ("Paper Towels", 6.49),
            ("Toilet Paper 12-pack", 8.99),
            ("Trash Bags", 5.49),
            ("Sponges", 2.49),
            ("All-Purpose Cleaner", 3.99),
            ("Light Bulbs", 6.99),
            ("AA Batteries 8-pack", 7.99),
            ("Aluminium Foil", 3.49),
            ("Hand Soap", 2.79),
        ),
    ),
    "Electronics": (
        "ELE",
        ("Voltix", "Auralink"),
        0.025,
        0.0,
        (
            ("Basic Smartphone", 49.00),
            ("Phone Case", 9.99),
            ("Screen Protector", 7.99),
            ("USB-C Cable", 8.99),
            ("Phone Charger", 12.99),
            ("Wireless Earbuds", 19.99),
            ("Bluetooth Speaker", 19.99),
            ("Power Bank", 14.99),
            ("Laptop Sleeve", 12.99),
            ("Wireless Mouse", 12.99),
            ("HDMI Cable", 7.99),
            ("Memory Card", 9.99),
        ),
    ),
    "Toys": (
        "TOY",
        ("PlayTime", "Wonderworks"),
        0.04,
        0.05,
        (
            ("Building Blocks Set", 14.99),
            ("Remote Control Car", 19.99),
            ("Plush Bear", 9.99),
            ("Jigsaw Puzzle", 8.99),
            ("Board Game", 14.99),
            ("Doll", 12.99),
            ("Crayons", 2.99),
            ("Colouring Book", 3.99),
            ("Toy Train Set", 19.99),
            ("Water Pistol", 5.99),
            ("Card Game", 6.99),
            ("Modelling Clay", 4.99),
        ),
    ),
    "Garden": (
        "GAR",
        ("GreenThumb", "Bloom & Root"),
        0.08,
        0.15,
        (
            ("Potting Soil", 7.99),
            ("Flower Seeds", 2.99),
            ("Vegetable Seeds", 2.99),
            ("Garden Hose", 17.99),
            ("Plant Pots", 9.99),
            ("Fertiliser", 9.99),
            ("Charcoal", 9.99),
            ("BBQ Lighter Fluid", 4.99),
            ("Pruning Shears", 12.99),
            ("Watering Can", 9.99),
            ("Garden Gloves", 7.99),
            ("Lawn Seed", 11.99),
        ),
    ),
}
CATEGORIES: tuple[str, ...] = tuple(_CATALOGUE)
_BRAND_PRICE_FACTOR = (0.85, 1.25)

# Items bought together far above chance (basket affinities). Each group uses one brand variant for all its items.
_AFFINITY_ITEMS: tuple[tuple[str, ...], ...] = (
    ("Spaghetti", "Tomato Pasta Sauce", "Parmesan"),
    ("White Bread", "Butter"),
    ("Basic Smartphone", "Phone Case", "Screen Protector"),
    ("Ground Coffee", "Whole Milk"),
    ("Potato Chips", "Cola"),
    ("Tortilla Chips", "Salsa Dip"),
    ("Hot Dog Rolls", "Sausages"),
    ("Charcoal", "BBQ Lighter Fluid"),
    ("Bagels", "Cream Cheese"),
    ("Breakfast Cereal", "Oat Milk"),
    ("Peanut Butter", "Strawberry Jam", "Wholegrain Bread"),
    ("Remote Control Car", "AA Batteries 8-pack"),
    ("Potting Soil", "Plant Pots", "Flower Seeds"),
    ("Laundry Detergent", "Fabric Softener"),
    ("Croissants", "Orange Juice"),
    ("Red Wine", "Cheddar Cheese"),
    ("Crayons", "Colouring Book"),
    ("Phone Charger", "USB-C Cable"),
    ("Dish Soap", "Sponges"),
    ("Vegetable Seeds", "Fertiliser"),
)

# Everyday items many baskets pick up besides what they came for (budget brand); none is in an affinity group.
_STAPLE_ITEMS = ("Eggs (dozen)", "Baguette", "Sparkling Water", "Still Water 6-pack")

_CITIES = (
    "Ashford", "Brookfield", "Cedar Falls", "Dunmore", "Elmstead", "Fairview", "Glenwood", "Harbour Point",
    "Ironbridge", "Juniper Hill", "Kingsbury", "Lakeside", "Millbrook", "Northgate", "Oakridge", "Pinecrest",
    "Queensbay", "Riverton", "Stonehaven", "Thornbury", "Upton", "Valley Cross", "Westbrook", "Yarmouth",
)  # fmt: skip
_SITE_KINDS = ("", " Retail Park", " Mall", " High Street", " Station", " Market", " Plaza", " Quay")
REGIONS: dict[str, str] = {
    "North": "America/Chicago",
    "East": "America/New_York",
    "South": "America/Denver",
    "West": "America/Los_Angeles",
}

OPENING_HOUR = 8
CLOSING_HOUR = 21
# relative share of orders in each opening hour, 08:00 .. 20:00 (lunch and after-work peaks)
HOURLY_PROFILE = np.array([3, 5, 7, 9, 12, 11, 8, 8, 9, 11, 10, 6, 3], dtype=float)
# Monday .. Sunday, weekend peak
WEEKDAY_FACTORS = np.array([0.88, 0.86, 0.9, 0.96, 1.1, 1.38, 1.08])


@dataclass(frozen=True)
class Catalogue:
    """The products as parallel arrays (index = product number), plus the affinity groups as product numbers."""

    skus: tuple[str, ...]
    names: tuple[str, ...]
    category: np.ndarray  # int, index into CATEGORIES
    popularity: np.ndarray  # float, relative weight within the category
    groups: tuple[tuple[int, ...], ...]
    staples: tuple[int, ...]


def _catalogue_rows() -> list[tuple[str, str, int, str, float]]:
    """(sku, name, category index, item, list price) for every product, in a fixed order."""
    rows = []
    for cat_index, (prefix, brands, _share, _extra, items) in enumerate(_CATALOGUE.values()):
        for item_index, (item, price) in enumerate(items):
            for variant, brand in enumerate(brands):
                sku = f"{prefix}-{item_index + 1:02d}{'BP'[variant]}"
                rows.append((sku, f"{brand} {item}", cat_index, item, round(price * _BRAND_PRICE_FACTOR[variant], 2)))
    return rows


def _group_skus() -> tuple[tuple[str, ...], ...]:
    by_item = {(item, sku[-1]): sku for sku, _name, _cat, item, _price in _catalogue_rows()}
    return tuple(
        tuple(by_item[(item, "BP"[number % 2])] for item in items) for number, items in enumerate(_AFFINITY_ITEMS)
    )


def affinity_groups() -> tuple[tuple[str, ...], ...]:
    """The SKU groups (pairs and triples) that the demo puts in baskets together far above chance."""
    return _group_skus()


def affinity_pairs() -> tuple[tuple[str, str], ...]:
    """Every unordered SKU pair inside an affinity group (a triple gives three pairs), each sorted, in order."""
    return tuple(tuple(sorted(pair)) for group in _group_skus() for pair in itertools.combinations(group, 2))  # type: ignore[misc]


def category_shares() -> np.ndarray:
    return np.array([share for _p, _b, share, _e, _i in _CATALOGUE.values()])


def extra_units() -> np.ndarray:
    """Mean extra units (beyond one) per line, by category."""
    return np.array([extra for _p, _b, _s, extra, _i in _CATALOGUE.values()])


def build_catalogue(rng: np.random.Generator) -> tuple[Catalogue, pd.DataFrame]:
    """The catalogue arrays and the products table rows (sku, name, category, unit_cost, unit_price).

    ``unit_price`` is the list price before any price change; the caller applies changes. Margins are 20-45%, except
    a handful of loss leaders (cost above price).
    """
    rows = _catalogue_rows()
    skus = tuple(r[0] for r in rows)
    price = np.array([r[4] for r in rows])
    cost = np.round(price * rng.uniform(0.55, 0.8, len(rows)), 2)
    loss_leaders = rng.choice(len(rows), size=5, replace=False)
    cost[loss_leaders] = np.round(price[loss_leaders] * rng.uniform(1.05, 1.2, len(loss_leaders)), 2)
    # a few best sellers per category; dearer items sell less often
    popularity = (rng.pareto(1.5, len(rows)) + 0.3) * np.sqrt(np.median(price) / price)
    index = {sku: number for number, sku in enumerate(skus)}
    catalogue = Catalogue(
        skus=skus,
        names=tuple(r[1] for r in rows),
        category=np.array([r[2] for r in rows]),
        popularity=np.minimum(popularity, 8.0),
        groups=tuple(tuple(index[sku] for sku in group) for group in _group_skus()),
        staples=tuple(number for number, row in enumerate(rows) if row[3] in _STAPLE_ITEMS and row[0][-1] == "B"),
    )
    table = pd.DataFrame(
        {
            "sku": list(skus),
            "name": list(catalogue.names),
            "category": [CATEGORIES[r[2]] for r in rows],
            "unit_cost": cost,
            "unit_price": price,
        }
    )
    return catalogue, table


def store_table(count: int, *, first_day: dt.date, rng: np.random.Generator) -> pd.DataFrame:
    """The stores table rows: code, name, region, timezone, currency, manager_emails, opened_on."""
    width = max(2, len(str(count)))
    codes = [f"S{number + 1:0{width}d}" for number in range(count)]
    regions = list(REGIONS)
    rows = []
    for number, code in enumerate(codes):
        city = _CITIES[number % len(_CITIES)]
        name = f"{city}{_SITE_KINDS[(number // len(_CITIES)) % len(_SITE_KINDS)]}"
        if number >= len(_CITIES) * len(_SITE_KINDS):
            name = f"{name} {number // (len(_CITIES) * len(_SITE_KINDS)) + 1}"
        region = regions[number % len(regions)]
        emails = [f"manager.{code.lower()}@example.com"]
        if rng.random() < 0.5:
            emails.append(f"assistant.{code.lower()}@example.com")
        opened = first_day - dt.timedelta(days=int(rng.integers(120, 15 * 365)))
        rows.append((code, name, region, REGIONS[region], "USD", emails, opened))
    columns = ["code", "name", "region", "timezone", "currency", "manager_emails", "opened_on"]
    return pd.DataFrame(rows, columns=columns)


def store_profiles(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per store: size factor (about 0.7-1.4) and yearly growth rate (some stores grow, some decline)."""
    size = np.clip(rng.lognormal(0.0, 0.22, count), 0.7, 1.45)
    growth = rng.uniform(-0.06, 0.1, count)
    if count >= 2:
        growth[np.argmin(growth)] = min(growth.min(), -0.04)
        growth[np.argmax(growth)] = max(growth.max(), 0.06)
    return size, growth


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7 + 21)
    return thursday + dt.timedelta(days=1)


def holidays(first_day: dt.date, last_day: dt.date) -> dict[dt.date, tuple[str, float]]:
    """The holidays in the range: day -> (name, multiplier of the day's orders); 0 means closed."""
    found: dict[dt.date, tuple[str, float]] = {}
    for year in range(first_day.year, last_day.year + 1):
        for day, name, factor in (
            (dt.date(year, 1, 1), "New Year's Day", 0.55),
            (black_friday(year), "Black Friday", 1.55),
            (dt.date(year, 12, 23), "Christmas shopping", 1.25),
            (dt.date(year, 12, 24), "Christmas Eve", 1.35),
            (dt.date(year, 12, 25), "Christmas Day", 0.0),
            (dt.date(year, 12, 31), "New Year's Eve", 1.15),
        ):
            if first_day <= day <= last_day:
                found[day] = (name, factor)
    return found


def december_bump(day_of_year: np.ndarray) -> np.ndarray:
    """0..1, peaking in the week before Christmas."""
    return np.asarray(np.exp(-(((day_of_year - 352) / 14.0) ** 2)))


def summer_bump(day_of_year: np.ndarray) -> np.ndarray:
    """0..1, peaking in late June (the garden season)."""
    return np.asarray(np.exp(-(((day_of_year - 172) / 50.0) ** 2)))
