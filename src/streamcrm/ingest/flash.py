"""The processor's flash-sale fan-out state: an interest index per partition and the
campaigns this worker knows. Derived state only, no I/O.

Each partition's :class:`~streamcrm.policies.flash_sale_index.InterestIndex` is kept from
the events the worker applies and rebuilt from the restored table (the customers' recent
views, carts and purchases) after a restart or a handover, as the deadline index is.
Campaigns (the latest announcement per campaign id) are every worker's: read whole from
the broadcast topic. On the event clock an announcement waits, per partition, until the
partition's watermark passes its time, so it finds the interest of the events before it.
"""

from __future__ import annotations

from collections.abc import Iterable

from streamcrm.decisions import flash_sale as decision
from streamcrm.events import Event
from streamcrm.policies.flash_sale import Campaign
from streamcrm.policies.flash_sale_index import InterestIndex
from streamcrm.state import CustomerState


class FlashSales:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.indexes: dict[int, InterestIndex] = {}
        self.campaigns: dict[str, Campaign] = {}  # campaign id -> its latest announcement
        # Event clock: announcement -> partitions it was fanned out on.
        self.done: dict[tuple[str, float], set[int]] = {}
        self.rebuilds = 0  # bumped by every rebuild (the shell re-runs the fan-out then)

    def index(self, partition: int) -> InterestIndex:
        index = self.indexes.get(partition)
        if index is None:
            index = self.indexes[partition] = InterestIndex(horizon_s=self.window_s)
        return index

    def record(self, partition: int, event: Event) -> None:
        if event.type in {"product_viewed", "cart_item_added", "order_placed"}:
            self.index(partition).record(event)

    def forget(self, partition: int, customer_id: str) -> None:
        if partition in self.indexes:
            self.indexes[partition].forget(customer_id)

    def rebuild(self, customers: Iterable[tuple[str, int, CustomerState]]) -> None:
        self.indexes = {}
        for customer_id, partition, state in customers:
            index = self.index(partition)
            for sku, category, kind, ts in decision.interests(state):
                index.add(customer_id, sku, category, kind, ts)
        self.done = {}
        self.rebuilds += 1

    def learn(self, campaign: Campaign) -> bool:
        """Remember the campaign; False if it is this very announcement again."""
        known = self.campaigns.get(campaign.campaign_id)
        if known == campaign:
            return False
        self.campaigns[campaign.campaign_id] = campaign
        return True

    def interested(self, partition: int, campaign: Campaign, now: float) -> list[str]:
        index = self.indexes.get(partition)
        if index is None:
            return []
        found = index.interested(skus=campaign.skus, categories=campaign.categories, now=now)
        return sorted(found)  # one order whatever the index's history

    def waiting(self, partition: int, until: float) -> list[Campaign]:
        """Event clock: the campaigns announced by ``until`` not yet fanned out on
        ``partition`` (marked done), in announcement order."""
        out = []
        for campaign in sorted(
            self.campaigns.values(), key=lambda c: (c.announced_at, c.campaign_id)
        ):
            if campaign.announced_at > until or campaign.ends_at <= campaign.announced_at:
                continue
            done = self.done.setdefault((campaign.campaign_id, campaign.announced_at), set())
            if partition not in done:
                done.add(partition)
                out.append(campaign)
        return out

    def running(self, now: float) -> list[Campaign]:
        return [c for c in self.campaigns.values() if c.ends_at > now]
