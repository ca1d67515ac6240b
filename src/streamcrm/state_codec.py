"""A customer state as changelog bytes, compact, and back: ``encode(state)``, ``decode(raw)``.

The changelog (and the worker's bytes-per-customer figure) carries this JSON; the
in-memory state is the same either way (``decode(encode(s)) == s``). It differs from the
dataclasses' plain JSON (``orjson.dumps(state)``, which :func:`decode` reads too) in three
lossless ways, which took the realistic shop's mean state from 3,725 to about 2,000 bytes
(``scripts/state_bytes.py``):

- the top-level fields and the profile's that hold their default are left out (a
  customer who never ordered carries no ``last_order_at: null``, ``recent_orders: []``...);
- a recent view is a list ``[sku, category, price, ts, views]``, not an object;
- the offer's item features name each feature once (``features``), and each item carries
  the values in that order: ``[sku, [values]]`` (five items named 11 features each).

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

from streamcrm.state import CustomerState, OfferState, Profile, View

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
    if items and all(tuple(k for k, _ in x) == names for _, x in items):
        out["features"] = names
        out["items"] = [(sku, [v for _, v in x]) for sku, x in items]
    return out


def encode(state: CustomerState) -> bytes:
    return orjson.dumps(state, default=_plain, option=_OPTIONS)


def decode(raw: bytes) -> CustomerState:
    """A state from :func:`encode`'s bytes or the plain form's (``orjson.dumps(state)``)."""
    return CustomerState.from_dict(orjson.loads(raw))
