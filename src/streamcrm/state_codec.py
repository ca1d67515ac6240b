"""A customer state as changelog bytes, compact, and back: ``encode(state)``, ``decode(raw)``.

The changelog (and the worker's bytes-per-customer figure) carries this JSON; the
in-memory state is the same either way (``decode(encode(s)) == s``). It differs from the
dataclasses' plain JSON (``orjson.dumps(state)``, which :func:`decode` reads too) in three
lossless ways, which took the realistic shop's mean state from 3,725 to about 2,000 bytes
(``scripts/state_bytes.py``):

- the top-level fields and the profile's that hold their default are left out (a
  customer who never ordered carries no ``last_order_at: null``, ``recent_orders: []``...);
- a recent view is a list ``[sku, category, price, ts, views]``, not an object;
- the offer's item features are values only, one list per shown SKU in ``skus``' order
  (``x``); the feature names are written once (``features``) only when they are not the
  ranker's (:data:`FEATURE_NAMES`, sorted as the offer stores them);
- the offer's evaluation lists (eval_model, eval_popular, eval_lists: seven top 10s that
  overlap) are positions in one table of their distinct SKUs (``eval``).

The compact offer of an earlier release (``features`` with ``items`` as ``[sku,
[values]]``) is read too.

>>> from streamcrm.state import CustomerState, View
>>> s = CustomerState("c1", 1.0, 2.0, recent_views=(View("s1", "shoes", 9.5, 2.0),))
>>> encode(s)
b'{"customer_id":"c1","first_seen":1.0,"last_seen":2.0,"recent_views":[["s1","shoes",9.5,2.0,1]]}'
>>> decode(encode(s)) == s
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from streamcrm.learning.offer_features import FEATURES
from streamcrm.state import CustomerState, OfferState, Profile, View

FEATURE_NAMES = tuple(sorted(FEATURES))  # an offer item's features, as make_offer sorts them
_EVAL_FIELDS = ("eval_model", "eval_popular", "eval_lists")
_MISSING = object()
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS
# Classes whose defaults are left out (their from_dict reads every field with its default).
_SPARSE = (CustomerState, Profile)


def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = _MISSING
        out.append((f.name, default))
    return tuple(out)


_SPECS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _spec(cls: type) -> tuple[tuple[str, Any], ...]:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _fields(cls)
    return spec


def _plain(obj: Any) -> Any:
    """orjson's ``default`` for every dataclass (``OPT_PASSTHROUGH_DATACLASS``)."""
    cls = type(obj)
    if cls is View:
        return (obj.sku, obj.category, obj.price, obj.ts, obj.views)
    if cls is OfferState:
        return _offer(obj)
    spec = _spec(cls)
    if cls in _SPARSE:
        out = {}
        for name, default in spec:
            value = getattr(obj, name)
            if default is _MISSING or type(value) is not type(default) or value != default:
                out[name] = value
        return out
    if not dataclasses.is_dataclass(obj):
        msg = f"cannot encode {cls.__name__}"
        raise TypeError(msg)
    return {name: getattr(obj, name) for name, _ in spec}


def _offer(offer: OfferState) -> dict[str, Any]:
    out = {name: getattr(offer, name) for name, _ in _spec(OfferState)}
    items = offer.items
    names = tuple(k for k, _ in items[0][1]) if items else ()
    if (
        items
        and tuple(sku for sku, _ in items) == offer.skus
        and all(tuple(k for k, _ in x) == names for _, x in items)
    ):
        del out["items"]
        out["x"] = [[v for _, v in x] for _, x in items]
        if names != FEATURE_NAMES:
            out["features"] = names
    for name in _EVAL_FIELDS:
        del out[name]
    out["eval"] = _eval_table(offer)
    return out


def _eval_table(offer: OfferState) -> list[Any]:
    """``[distinct SKUs, model positions, popular positions, [[name, positions], ...]]``."""
    index: dict[str, int] = {}
    at = index.setdefault

    def positions(skus: tuple[str, ...]) -> list[int]:
        return [at(sku, len(index)) for sku in skus]

    model, popular = positions(offer.eval_model), positions(offer.eval_popular)
    lists = [[name, positions(skus)] for name, skus in offer.eval_lists]
    return [list(index), model, popular, lists]


def _offer_data(data: dict[str, Any]) -> dict[str, Any]:
    """An encoded offer's dict in the form :meth:`OfferState.from_dict` reads."""
    if "x" in data:
        names = data.get("features") or FEATURE_NAMES
        data["items"] = [(sku, list(zip(names, x, strict=True))) for sku, x in
                         zip(data["skus"], data.pop("x"), strict=True)]  # fmt: skip
        data.pop("features", None)
    table = data.pop("eval", None)
    if table is not None:
        skus, model, popular, lists = table
        data["eval_model"] = [skus[i] for i in model]
        data["eval_popular"] = [skus[i] for i in popular]
        data["eval_lists"] = [(name, [skus[i] for i in at]) for name, at in lists]
    return data


def encode(state: CustomerState) -> bytes:
    return orjson.dumps(state, default=_plain, option=_OPTIONS)


def decode(raw: bytes) -> CustomerState:
    """A state from :func:`encode`'s bytes or the plain form's (``orjson.dumps(state)``)."""
    data = orjson.loads(raw)
    if data.get("offer"):
        data["offer"] = _offer_data(data["offer"])
    return CustomerState.from_dict(data)
