"""A synthetic shop's catalogue: long-tailed popularity over a few hundred categories. Pure.

Nothing is stored per SKU: SKU ``i`` belongs to category ``i mod C`` and its price is a
function of its id, so a catalogue of 10^7 SKUs costs nothing until it is sampled.

- **Categories**: ``C = clamp(sqrt(skus), 12, 400)`` (12 for 400 SKUs, 316 for 100,000,
  400 from 160,000 up); the first 12 carry the base names, the rest ``<base>-<n>``.
- **Popularity**: Zipf-like at both levels, as real shops are (a few items take most
  views, most items are seldom seen). Categories are drawn with exponent ``zipf``, and
  within a category its SKUs with the same exponent; rank ``r`` (0-based) has weight
  ``1 / (r + 1) ** zipf``. Drawn in O(1) by inverting the continuous distribution.
- **Prices**: log-normal (median 27, many cheap items, a few up to 2,000), derived from
  a hash of the SKU id, so the same SKU always has the same price.

>>> shop = Catalog(100_000)
>>> shop.categories, shop.category_name(3), shop.category_name(40)
(316, 'books', 'toys-3')
>>> shop.sku(0, 0) == shop.sku(0, 0), shop.sku(0, 0)[:2]
(True, ('sku00000', 'shoes'))
>>> import random
>>> rng = random.Random(1)
>>> ranks = [shop.draw_rank(rng, 1000) for _ in range(10_000)]
>>> sum(r < 10 for r in ranks) > sum(r >= 500 for r in ranks)  # the head outweighs half the tail
True
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

BASE_CATEGORIES = (
    "shoes", "outdoor", "kitchen", "books", "toys", "beauty",
    "electronics", "garden", "sports", "fashion", "home", "grocery",
)  # fmt: skip
MAX_CATEGORIES = 400

Sku = tuple[str, str, float]  # (sku id, category, price)


@dataclass(frozen=True, slots=True)
class Catalog:
    skus: int
    zipf: float = 1.0
    categories: int = field(init=False)
    _width: int = field(init=False)

    def __post_init__(self) -> None:
        if self.skus < 1 or self.zipf < 0:
            msg = f"need skus >= 1 and zipf >= 0 (got {self.skus}, {self.zipf})"
            raise ValueError(msg)
        wanted = max(len(BASE_CATEGORIES), min(MAX_CATEGORIES, math.isqrt(self.skus)))
        object.__setattr__(self, "categories", min(wanted, self.skus))
        object.__setattr__(self, "_width", max(4, len(str(self.skus - 1))))

    def category_name(self, index: int) -> str:
        base = BASE_CATEGORIES[index % len(BASE_CATEGORIES)]
        return base if index < len(BASE_CATEGORIES) else f"{base}-{index // len(BASE_CATEGORIES)}"

    def size_of(self, category: int) -> int:
        return (self.skus - category + self.categories - 1) // self.categories

    def sku(self, category: int, rank: int) -> Sku:
        """The ``rank``-th most popular SKU of ``category``."""
        sku_id = f"sku{rank * self.categories + category:0{self._width}d}"
        return sku_id, self.category_name(category), price_of(sku_id)

    def draw_rank(self, rng: random.Random, n: int) -> int:
        """A rank in [0, n), Zipf-like: the inverse of the continuous 1/x**zipf distribution."""
        u, s = rng.random(), self.zipf
        if abs(s - 1.0) < 1e-9:
            x = (n + 1.0) ** u
        else:
            a = 1.0 - s
            x = (1.0 + u * ((n + 1.0) ** a - 1.0)) ** (1.0 / a)
        return min(int(x) - 1, n - 1)

    def draw_category(self, rng: random.Random) -> int:
        return self.draw_rank(rng, self.categories)

    def draw_in(self, rng: random.Random, category: int) -> Sku:
        return self.sku(category, self.draw_rank(rng, self.size_of(category)))

    def favourites(self, rng: random.Random, k: int = 3) -> tuple[int, ...]:
        """``k`` distinct categories a customer mostly browses, popular ones more often."""
        chosen: list[int] = []
        while len(chosen) < min(k, self.categories):
            category = self.draw_category(rng)
            if category not in chosen:
                chosen.append(category)
        return tuple(chosen)


def price_of(sku_id: str) -> float:
    """exp(N(3.3, 0.9)) from the id's hash, in [1.99, 2000]."""
    digest = hashlib.blake2b(sku_id.encode(), digest_size=16).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    u2 = int.from_bytes(digest[8:], "big") / 2**64
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return round(min(2000.0, max(1.99, math.exp(3.3 + 0.9 * z))), 2)
