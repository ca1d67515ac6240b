"""Which order an offer serves: the learned ranker's, or its fallback's. Pure.

The fallback is the strongest simple rule: the candidate generator's own order (the
customer's recent views, most recent first, then co-occurrence neighbours, then popular
items). Every offer keeps both orders' top 10 (whichever it served); at its evaluation
moment (the customer's next cart add or buy) the gate learns whether the target made
each one's top ``k``. Only moments where at least one did count (the others say nothing
about which is better). Both hit rates are kept as exponentially weighted means (the
last ~``1 / (1 - fading)`` such moments), and offers are served by the model only while
its recent hit rate is above the fallback's, after at least ``warmup`` moments. So the
model is never worse than its fallback for long: a stretch where it is behind switches
the offers back within a few dozen examples.

>>> gate = OfferGate(warmup=2)
>>> gate.update(model_hit=True, fallback_hit=False); gate.use_model
False
>>> gate.update(model_hit=False, fallback_hit=False); gate.examples  # says nothing
1
>>> gate.update(model_hit=True, fallback_hit=False); gate.use_model
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamcrm.learning.rebuy import RebuyRates
from streamcrm.learning.river_state import BadState, integer


@dataclass(slots=True)
class OfferGate:
    fading: float = 0.98
    warmup: int = 20
    k: int = 5
    examples: int = 0
    model_rate: float = 0.0
    fallback_rate: float = 0.0
    model_hits: int = 0  # all-time, for the report
    fallback_hits: int = 0
    # When a recent purchase beats the served order's slot (learned at the same moments).
    rebuy: RebuyRates = field(default_factory=RebuyRates)
    # This worker's own moments since the last export: (examples, model hits, fallback hits).
    _outbox: list[int] = field(default_factory=lambda: [0, 0, 0])

    def update(self, *, model_hit: bool, fallback_hit: bool) -> None:
        if not (model_hit or fallback_hit):
            return
        a = self.fading
        self.model_rate = a * self.model_rate + (1 - a) * float(model_hit)
        self.fallback_rate = a * self.fallback_rate + (1 - a) * float(fallback_hit)
        self.examples += 1
        self.model_hits += int(model_hit)
        self.fallback_hits += int(fallback_hit)
        box = self._outbox
        box[0] += 1
        box[1] += int(model_hit)
        box[2] += int(fallback_hit)

    def export_delta(self) -> dict[str, Any] | None:
        """This worker's own informative moments since the last export, as counts, and
        its buy-again counts (None: there were neither)."""
        n, model, fallback = self._outbox
        rebuy = self.rebuy.export_delta()
        if not n and rebuy is None:
            return None
        self._outbox = [0, 0, 0]
        delta: dict[str, Any] = {"examples": n, "model_hits": model, "fallback_hits": fallback}
        if rebuy is not None:
            delta["rebuy"] = rebuy
        return delta

    def merge_delta(self, delta: Any) -> None:
        """Another worker's moments, folded in as if they had arrived here in one run
        (``n`` moments with the delta's hit shares: the weight of ``n`` fading steps)."""
        if delta is None:
            return
        if not isinstance(delta, dict):
            raise BadState("gate delta: expected an object")
        n = integer(delta.get("examples"), "gate examples")
        model = integer(delta.get("model_hits"), "gate model hits")
        fallback = integer(delta.get("fallback_hits"), "gate fallback hits")
        self.rebuy.merge_delta(delta.get("rebuy"))
        if not n or model > n or fallback > n:
            return
        keep = self.fading**n
        self.model_rate = keep * self.model_rate + (1 - keep) * model / n
        self.fallback_rate = keep * self.fallback_rate + (1 - keep) * fallback / n
        self.examples += n
        self.model_hits += model
        self.fallback_hits += fallback

    @property
    def use_model(self) -> bool:
        return self.examples >= self.warmup and self.model_rate > self.fallback_rate

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples, "model_rate": self.model_rate,
            "fallback_rate": self.fallback_rate, "model_hits": self.model_hits,
            "fallback_hits": self.fallback_hits, "rebuy": self.rebuy.as_dict(),
        }  # fmt: skip
