"""Flash sales wired into the decision core: the fan-out on the event clock (the replay and
the event-clock worker), the interest index rebuilt from the table, every notice through
the contact policy and on its schema."""

from __future__ import annotations

import orjson

from streamcrm.contract import validator
from streamcrm.crm_config import CrmConfig
from streamcrm.events import parse_ts
from streamcrm.ingest import Processor, Record
from streamcrm.policies.contact import ContactConfig
from streamcrm.replay.adapters import Mapped
from streamcrm.replay.runner import KINDS, Workers, replay
from streamcrm.synthetic import generate
from streamcrm.synthetic_flash import announcements

N, SEED, CUSTOMERS = 6000, 3, 200


def _traffic() -> list[Mapped]:
    out = []
    for r in generate(N, seed=SEED, customers=CUSTOMERS):
        out.append(Mapped(parse_ts(orjson.loads(r.value)["ts"]), r.topic_kind, r.key, r.value))
    return out


def _campaigns() -> list[tuple[bytes, bytes]]:
    return [(k, orjson.dumps(b)) for k, b in announcements(N, seed=SEED, customers=CUSTOMERS)]


def _flash(workers: Workers) -> dict[str, int]:
    out = replay(_traffic(), crm=CrmConfig(), campaigns=_campaigns(), workers=workers)
    return {k: v for k, v in out.outcomes.items() if k.startswith("flash_")} | {
        "summary": out.summary()["flash_sale_notifications"]
    }


def test_announcements_meet_their_schema() -> None:
    for _, body in announcements(N, seed=SEED, customers=CUSTOMERS):
        validator("flash_sale_announced").validate(body)


def test_replay_fans_out_the_same_notices_whichever_worker_owns_the_customer() -> None:
    one = _flash(Workers())
    assert one == _flash(Workers(count=2, partitions=8))
    assert one["flash_campaign_announced"] == 3
    assert one["flash_notice_starts_now"] > 0 and one["flash_notice_last_chance"] > 0
    assert one["summary"] == sum(
        one[f"flash_notice_{k}"] for k in ("starts_now", "last_chance")
    ) + one.get("flash_notice_early_access", 0)
    assert one["flash_suppressed_holdout"] > 0  # the contact policy's holdout applies


def _processor(clock: str = "wall") -> Processor:
    crm = CrmConfig(contact=ContactConfig(holdout_share=0.0))
    return Processor(KINDS, crm=crm, clock=clock)


def test_the_rebuilt_index_enrolls_whom_the_live_one_does() -> None:
    live, table = _processor(), {}
    records = [Record(m.topic_kind, 0, i, m.key, m.value) for i, m in enumerate(_traffic())]
    end = max(m.ts for m in _traffic())
    for i in range(0, len(records), 500):
        batch = live.process(records[i : i + 500], table.get, end)
        table.update({c: s for c, (_, s) in batch.states.items()})
    rebuilt = _processor()
    rebuilt.rebuild((c, 0, s) for c, s in table.items())
    key, value = _campaigns()[-1]
    body = orjson.loads(value) | {
        "starts_at": "2100-01-01T00:00:00Z",
        "ends_at": "2100-01-02T00:00:00Z",
    }
    record = Record("campaigns", 0, 0, key, orjson.dumps(body))
    enrolled = [set(p.announce(record, table.get, end).states) for p in (live, rebuilt)]
    assert enrolled[0] and enrolled[0] == enrolled[1]


def test_a_bad_announcement_is_dead_lettered_with_its_reason() -> None:
    processor = _processor()
    for value, reason in (
        (b"[1]", "not_an_object"),
        (b'{"type": "flash_sale_announced"}', "schema_violation"),
    ):
        result = processor.announce(Record("campaigns", 0, 0, b"fs", value), {}.get, 0.0)
        assert [body["reason"] for _, body in result.dead_letters] == [reason]
