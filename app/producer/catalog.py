"""The shop's pages and how popular each is.

A fixed catalog (home, search, categories, a few hundred products, cart, checkout, ...)
whose category and product popularity follows a Zipf-like law: a handful of products get
most of the views, a long tail gets a few, as on real shops.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

HOME = "/"
SEARCH = "/search"
CART = "/cart"
CHECKOUT = "/checkout"
CONFIRMATION = "/checkout/confirmation"
STATIC_PAGES = ("/account", "/help", "/deals")

CATEGORIES = (
    "electronics",
    "books",
    "home-garden",
    "fashion",
    "sports",
    "toys",
    "beauty",
    "grocery",
    "automotive",
    "music",
    "office",
    "pets",
)


class ZipfChoice:
    """Draws items with weight 1 / rank**exponent, rank 1 being the first item."""

    def __init__(self, items: tuple[str, ...], exponent: float) -> None:
        self.items = items
        weights = [1.0 / (rank**exponent) for rank in range(1, len(items) + 1)]
        self._cumulative = list(itertools.accumulate(weights))

    def __call__(self, rng: random.Random) -> str:
        point = rng.random() * self._cumulative[-1]
        return self.items[bisect.bisect_right(self._cumulative, point)]


@dataclass(frozen=True)
class Catalog:
    categories: tuple[str, ...]  # category page paths, most popular first
    products: tuple[str, ...]  # product page paths, most popular first
    by_category: dict[str, tuple[str, ...]]
    pick_category: ZipfChoice
    pick_product: ZipfChoice
    all_pages: tuple[str, ...]  # every page once; bots crawl it on every step

    def products_in(self, category: str) -> tuple[str, ...]:
        return self.by_category.get(category, ())


def build_catalog(seed: int, products: int = 300, exponent: float = 1.1) -> Catalog:
    """The same seed gives the same catalog and the same popularity ranking."""
    rng = random.Random(f"catalog-{seed}")
    categories = tuple(f"/category/{name}" for name in CATEGORIES)
    ranked_categories = tuple(rng.sample(categories, len(categories)))
    product_ids = rng.sample(range(1000, 10000), products)
    product_pages = tuple(f"/products/{pid}" for pid in product_ids)
    product_category = {p: rng.choice(categories) for p in product_pages}
    return Catalog(
        categories=ranked_categories,
        products=product_pages,
        by_category={
            c: tuple(p for p in product_pages if product_category[p] == c) for c in categories
        },
        pick_category=ZipfChoice(ranked_categories, exponent),
        pick_product=ZipfChoice(product_pages, exponent),
        all_pages=(
            HOME,
            SEARCH,
            CART,
            CHECKOUT,
            CONFIRMATION,
            *STATIC_PAGES,
            *ranked_categories,
            *product_pages,
        ),
    )
