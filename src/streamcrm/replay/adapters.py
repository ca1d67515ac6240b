"""Dataset adapters: public behaviour logs -> the contract's input events. Pure.

Each adapter turns rows into ``Mapped(ts, topic_kind, key, value)`` records carrying the
JSON of a schema event, or counts the row as unmapped with a reason; nothing is dropped
silently. Mapping choices (they shape every figure a replay reports):

- **Carts.** Logs have no cart ids: each customer has one open cart, ``<user>-cart<n>``,
  whose number moves on after a purchase. Every add is one unit.
- **Purchases.** REES46 and Taobao log one row per product bought; each row becomes an
  ``order_placed`` with that line (order id from the row), and it closes the open cart.
  Retailrocket rows carry a transaction id, used as the order id.
- **Prices.** Taobao and Retailrocket have none. A stable price per item is derived from a
  hash of its id: ``exp(2 + 3u)`` for ``u`` uniform in [0, 1) from the hash, so 7.39 to
  148.41, skewed to cheap items like real catalogues. Deterministic across runs.
- **Channel** is ``web`` (logs do not say).

>>> rows = ["999477,2200475,3607361,pv,1511848894", "999477,2200475,3607361,fav,1511848900"]
>>> mapped, unmapped = map_rows("taobao", rows)
>>> [m.topic_kind for m in mapped], dict(unmapped)
(['browse'], {'fav: no wishlist event in contract v1': 1})
>>> derived_price("2200475") == derived_price("2200475")
True
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streamcrm.contract import TOPIC_KIND_OF_TYPE
from streamcrm.events import format_ts

FORMATS = ("rees46", "taobao", "retailrocket", "jsonl")
_DAY_S = 86_400
_END_TS = 253_402_300_800.0  # 10000-01-01T00:00:00Z: format_ts saturates from here


@dataclass(frozen=True, slots=True)
class Mapped:
    ts: float
    topic_kind: str
    key: bytes
    value: bytes


class Unmappable(ValueError):
    """A row that has no event in the contract; the message is the reason counted."""


def derived_price(item_id: str) -> float:
    u = int.from_bytes(hashlib.blake2b(item_id.encode(), digest_size=8).digest(), "big") / 2**64
    return round(math.exp(2.0 + 3.0 * u), 2)


@dataclass(slots=True)
class _Carts:
    """One open cart per customer; a purchase moves it on to a new id. Also the run's
    caches of what every row recomputed (a log's seconds are nearly all distinct, its
    days and items are not)."""

    seq: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    days: dict[int, str] = field(default_factory=dict)  # day number -> "YYYY-MM-DDT"
    prices: dict[str, float] = field(default_factory=dict)

    def ts_text(self, ts: float) -> str:
        """:func:`format_ts`, with one datetime per day for whole seconds (the logs')."""
        if not (0.0 <= ts < _END_TS and ts.is_integer()):
            return format_ts(ts)
        day, second = divmod(int(ts), _DAY_S)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = format_ts(float(day * _DAY_S))[:11]
        hour, rest = divmod(second, 3600)
        return f"{prefix}{hour:02d}:{rest // 60:02d}:{rest % 60:02d}.000Z"

    def price(self, item_id: str) -> float:
        """:func:`derived_price`, once per item."""
        price = self.prices.get(item_id)
        if price is None:
            price = self.prices[item_id] = derived_price(item_id)
        return price

    def current(self, user: str) -> str:
        return f"{user}-cart{self.seq.get(user, 0)}"

    def close(self, user: str) -> str:
        cart = self.current(user)
        self.seq[user] = self.seq.get(user, 0) + 1
        return cart

    def event_id(self, fmt: str) -> str:
        self.rows += 1
        return f"{fmt}-{self.rows}"


def _event(carts: _Carts, fmt: str, type_: str, user: str, ts: float, **body: Any) -> Mapped:
    event = {
        "event_id": carts.event_id(fmt),
        "type": type_,
        "customer_id": user,
        "ts": carts.ts_text(ts),
        "channel": "web",
        **body,
    }
    return Mapped(ts, TOPIC_KIND_OF_TYPE[type_], user.encode(), orjson.dumps(event))


def _rees46_ts(row: dict[str, str]) -> float:
    text = row["event_time"].removesuffix(" UTC")
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _rees46(row: dict[str, str], ts: float, carts: _Carts) -> Mapped:
    user, sku, kind = row["user_id"], row["product_id"], row["event_type"]
    category = row["category_code"] or row["category_id"] or "unknown"
    price = float(row["price"])
    session = row.get("user_session") or None
    extra = {"session_id": session} if session else {}
    if kind == "view":
        return _event(
            carts,
            "rees46",
            "product_viewed",
            user,
            ts,
            sku=sku,
            category=category,
            price=price,
            **extra,
        )
    if kind == "cart":
        return _event(
            carts, "rees46", "cart_item_added", user, ts,
            cart_id=carts.current(user), sku=sku, qty=1, unit_price=price, category=category, **extra,
        )  # fmt: skip
    if kind == "remove_from_cart":
        return _event(
            carts,
            "rees46",
            "cart_item_removed",
            user,
            ts,
            cart_id=carts.current(user),
            sku=sku,
            qty=1,
            **extra,
        )
    if kind == "purchase":
        line = {"sku": sku, "qty": 1, "unit_price": price, "category": category}
        order_id = f"{session or user}-{sku}-{int(ts)}"
        return _event(
            carts, "rees46", "order_placed", user, ts,
            order_id=order_id, lines=[line], total=price, cart_id=carts.close(user), **extra,
        )  # fmt: skip
    raise Unmappable(f"event_type {kind!r} unknown")


_TAOBAO_FIELDS = ("user_id", "item_id", "category_id", "behavior", "ts")


def _taobao(row: dict[str, str], ts: float, carts: _Carts) -> Mapped:
    user, sku, category, kind = row["user_id"], row["item_id"], row["category_id"], row["behavior"]
    price = carts.price(sku)
    if kind == "pv":
        return _event(
            carts, "taobao", "product_viewed", user, ts, sku=sku, category=category, price=price
        )
    if kind == "cart":
        return _event(
            carts, "taobao", "cart_item_added", user, ts,
            cart_id=carts.current(user), sku=sku, qty=1, unit_price=price, category=category,
        )  # fmt: skip
    if kind == "buy":
        line = {"sku": sku, "qty": 1, "unit_price": price, "category": category}
        return _event(
            carts, "taobao", "order_placed", user, ts,
            order_id=f"{user}-{sku}-{int(ts)}", lines=[line], total=price, cart_id=carts.close(user),
        )  # fmt: skip
    if kind == "fav":
        raise Unmappable("fav: no wishlist event in contract v1")
    raise Unmappable(f"behavior {kind!r} unknown")


def _retailrocket(row: dict[str, str], ts: float, carts: _Carts) -> Mapped:
    user, sku, kind = row["visitorid"], row["itemid"], row["event"]
    price = carts.price(sku)
    if kind == "view":
        return _event(
            carts,
            "retailrocket",
            "product_viewed",
            user,
            ts,
            sku=sku,
            category="unknown",
            price=price,
        )
    if kind == "addtocart":
        return _event(
            carts, "retailrocket", "cart_item_added", user, ts,
            cart_id=carts.current(user), sku=sku, qty=1, unit_price=price,
        )  # fmt: skip
    if kind == "transaction":
        line = {"sku": sku, "qty": 1, "unit_price": price}
        order_id = row.get("transactionid") or f"{user}-{int(ts)}"
        return _event(
            carts, "retailrocket", "order_placed", user, ts,
            order_id=f"{order_id}-{sku}", lines=[line], total=price, cart_id=carts.close(user),
        )  # fmt: skip
    raise Unmappable(f"event {kind!r} unknown")


def _jsonl(line: str) -> Mapped:
    """The project's own format: one input event per line, passed through unchanged (the
    processor validates it, so invalid lines become dead letters, as on Kafka)."""
    raw = line.encode()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Mapped(0.0, "browse", b"", raw)
    if not isinstance(body, dict):
        return Mapped(0.0, "browse", b"", raw)
    kind = TOPIC_KIND_OF_TYPE.get(str(body.get("type")), "browse")
    key = str(body.get("customer_id", "")).encode()
    try:
        ts = datetime.fromisoformat(str(body.get("ts"))).timestamp()
    except ValueError:
        ts = 0.0
    return Mapped(ts, kind, key, raw)


_ADAPTERS = {"rees46": _rees46, "taobao": _taobao, "retailrocket": _retailrocket}


def _taobao_ts(row: dict[str, str]) -> float:
    return float(row["ts"])


def _retailrocket_ts(row: dict[str, str]) -> float:
    return float(row["timestamp"]) / 1000.0


_TIMESTAMPS = {"rees46": _rees46_ts, "taobao": _taobao_ts, "retailrocket": _retailrocket_ts}


def map_rows(fmt: str, lines: Iterable[str]) -> tuple[list[Mapped], Counter[str]]:
    """Map every row; return the records sorted by event time and the unmapped reasons.

    Sorting is stable, so rows with equal timestamps keep their file order.
    """
    if fmt not in FORMATS:
        msg = f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"
        raise ValueError(msg)
    mapped: list[Mapped] = []
    unmapped: Counter[str] = Counter()
    if fmt == "jsonl":
        mapped = [_jsonl(line) for line in lines if line.strip()]
        mapped.sort(key=lambda m: m.ts)
        return mapped, unmapped
    timed: list[tuple[float, dict[str, str]]] = []
    for row in _rows(fmt, lines):
        try:
            timed.append((_TIMESTAMPS[fmt](row), row))
        except (KeyError, ValueError, TypeError) as exc:
            unmapped[f"malformed row ({type(exc).__name__})"] += 1
    # Logs are not always in time order (Taobao is sorted by user): carts are numbered
    # and events replayed in event-time order. The sort is stable for equal timestamps.
    timed.sort(key=lambda pair: pair[0])
    carts = _Carts()
    adapter = _ADAPTERS[fmt]
    for ts, row in timed:
        try:
            mapped.append(adapter(row, ts, carts))
        except Unmappable as why:
            unmapped[str(why)] += 1
        except (KeyError, ValueError, TypeError) as exc:
            unmapped[f"malformed row ({type(exc).__name__})"] += 1
    return mapped, unmapped


def _rows(fmt: str, lines: Iterable[str]) -> Iterator[dict[str, str]]:
    if fmt == "taobao":  # no header
        for values in csv.reader(lines):
            yield dict(zip(_TAOBAO_FIELDS, values, strict=False))
    else:
        yield from csv.DictReader(lines)
