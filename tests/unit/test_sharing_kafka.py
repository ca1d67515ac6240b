"""The learning topic's read side (``read_records``, pure): a worker's own deltas come back
keyed by its sender and are skipped undecoded; every other record is decoded."""

from __future__ import annotations

import orjson

from streamcrm.sharing.kafka import OWN, read_records


def test_own_records_are_skipped_by_key_and_others_decoded() -> None:
    mine = {"v": 1, "worker": "a", "seq": 1}
    theirs = {"v": 1, "worker": "b", "seq": 1}
    records = [
        (0, b"a", orjson.dumps(mine)),
        (1, b"b", orjson.dumps(theirs)),
        (2, b"a", b"not json, never decoded"),
        (3, b"b", b"not json"),
        (4, None, orjson.dumps(mine)),  # no key: decoded (the merge skips it)
        (5, b"ab", orjson.dumps(theirs)),  # a key that only starts with the sender's
    ]
    assert read_records(records, own="a") == [
        (0, OWN), (1, theirs), (2, OWN), (3, None), (4, mine), (5, theirs),
    ]  # fmt: skip


def test_without_an_own_sender_everything_is_decoded() -> None:
    mine = {"v": 1, "worker": "a", "seq": 1}
    assert read_records([(7, b"a", orjson.dumps(mine))], own=None) == [(7, mine)]
    assert read_records([(8, b"a", b"")], own=None) == [(8, None)]
