"""Who is interested in what, per partition: the flash-sale interest index.

An announcement must find the customers interested in its SKUs and categories without a
scan of the customer table. The index maps each item (``sku:<id>`` or ``cat:<name>``) to
the customers who recently viewed, carted or bought it, with the strongest interest and
when it was last shown. It is bounded three ways: interest older than ``horizon_s``
(default 14 days) is ignored and pruned as it is met; each item keeps at most
``per_item`` customers (default 200,000; the least recently active go first); at most
``max_items`` items are kept (default 100,000; the least recently touched go first).

The index holds nothing the customer state does not: it is derived from each
customer's recent views, cart and orders, so a worker rebuilds it from the restored table
after a restart or a rebalance, as it does the deadline heap. It is a mutable cache (one
per partition); the decisions made from what it returns are pure.

>>> from streamcrm.events import Event
>>> index = InterestIndex()
>>> index.record(Event("e1", "product_viewed", "c1", 10.0, "web", None,
...                    {"sku": "s1", "category": "shoes", "price": 9.0}))
>>> index.record(Event("e2", "cart_item_added", "c2", 20.0, "web", None,
...                    {"cart_id": "k", "sku": "s1", "qty": 1, "unit_price": 9.0}))
>>> sorted(index.interested(skus=("s1",), categories=(), now=30.0).items())
[('c1', ('viewed', ('s1',))), ('c2', ('carted', ('s1',)))]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from streamcrm.events import Event

DAY = 86_400.0
STRENGTH = {"viewed": 1, "carted": 2, "bought": 3}
MAX_MATCHED_ITEMS = 50  # what a notification lists (the schema's bound)

Interest = tuple[str, tuple[str, ...]]  # (strongest interest, matched items)


class InterestIndex:
    def __init__(
        self, *, horizon_s: float = 14 * DAY, per_item: int = 200_000, max_items: int = 100_000
    ) -> None:
        self.horizon_s, self.per_item, self.max_items = horizon_s, per_item, max_items
        # item -> customer -> (strength, last ts); both levels in least-recent-first order
        self._items: OrderedDict[str, OrderedDict[str, tuple[int, float]]] = OrderedDict()
        self.dropped = 0  # entries evicted by the bounds (not by the horizon)

    def record(self, event: Event) -> None:
        """Note the interest an event shows (views, cart adds, orders; others: nothing)."""
        body = event.body
        if event.type == "product_viewed":
            pairs = [(body["sku"], body["category"], "viewed")]
        elif event.type == "cart_item_added":
            pairs = [(body["sku"], body.get("category"), "carted")]
        elif event.type == "order_placed":
            pairs = [(ln["sku"], ln.get("category"), "bought") for ln in body["lines"]]
        else:
            return
        for sku, category, kind in pairs:
            self._note(f"sku:{sku}", event.customer_id, STRENGTH[kind], event.ts)
            if category:
                self._note(f"cat:{category}", event.customer_id, STRENGTH[kind], event.ts)

    def add(self, customer: str, sku: str | None, category: str | None, kind: str, ts: float) -> None:
        """Note one interest directly (the rebuild from a restored customer state)."""
        if sku:
            self._note(f"sku:{sku}", customer, STRENGTH[kind], ts)
        if category:
            self._note(f"cat:{category}", customer, STRENGTH[kind], ts)

    def forget(self, customer_id: str) -> None:
        """Drop a customer everywhere (erasure). O(items): erasures are rare."""
        for customers in self._items.values():
            customers.pop(customer_id, None)

    def _note(self, item: str, customer: str, strength: int, ts: float) -> None:
        items = self._items
        customers = items.get(item)
        if customers is None:
            customers = items[item] = OrderedDict()
        else:
            items.move_to_end(item)  # most recently touched last
        old = customers.pop(customer, None)
        if old is not None and ts - old[1] < self.horizon_s:
            strength = max(strength, old[0])
        customers[customer] = (strength, max(ts, old[1]) if old else ts)
        if len(customers) > self.per_item:
            customers.popitem(last=False)
            self.dropped += 1
        if len(self._items) > self.max_items:
            _, gone = self._items.popitem(last=False)
            self.dropped += len(gone)

    def interested(
        self, *, skus: Iterable[str], categories: Iterable[str], now: float
    ) -> dict[str, Interest]:
        """Every customer with recent interest in one of the items: strongest, and which."""
        found: dict[str, tuple[int, list[str]]] = {}
        wanted = [(f"sku:{s}", s) for s in skus] + [(f"cat:{c}", c) for c in categories]
        for key, label in wanted:
            customers = self._items.get(key)
            if not customers:
                continue
            self._prune(customers, now)
            for customer, (strength, ts) in customers.items():
                if now - ts >= self.horizon_s:  # out of order, so not pruned yet
                    continue
                best, items = found.get(customer, (0, []))
                if len(items) < MAX_MATCHED_ITEMS:
                    items.append(label)
                found[customer] = (max(best, strength), items)
        names = {v: k for k, v in STRENGTH.items()}
        return {c: (names[s], tuple(items)) for c, (s, items) in found.items()}

    def _prune(self, customers: OrderedDict[str, tuple[int, float]], now: float) -> None:
        """Least recent first, so stale entries are at the front."""
        while customers:
            _, (_, ts) = next(iter(customers.items()))
            if now - ts < self.horizon_s:
                return
            customers.popitem(last=False)

    def size(self) -> tuple[int, int]:
        """(items, entries)."""
        return len(self._items), sum(len(c) for c in self._items.values())
