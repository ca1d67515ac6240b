"""The Processor's dead letters: complete, bounded, and valid against their schema."""

from __future__ import annotations

import base64

from streamcrm.contract import validator
from streamcrm.ingest import Processor, Record

KINDS = {"b": "browse", "c": "cart", "o": "order"}


def test_dead_letters_validate_and_carry_the_original_bytes() -> None:
    records = [
        Record("c", 2, 7, b"c1", b'{"type": "cart_item_added", "qty": -1'),
        Record("b", 0, 8, None, b"[1]"),
    ]
    result = Processor(KINDS).process(records, {}.get, now=1_790_000_000.0)
    assert [letter["reason"] for _, letter in result.dead_letters] == [
        "invalid_json",
        "not_an_object",
    ]
    for (key, letter), record in zip(result.dead_letters, records, strict=True):
        validator("dead_letter").validate(letter)
        assert key == record.key
        assert base64.b64decode(letter["original_b64"]) == record.value
        assert letter["event_id"] == f"dl:{record.topic}:{record.partition}:{record.offset}"
        assert letter["original_truncated"] is False


def test_an_oversized_record_gives_a_bounded_dead_letter() -> None:
    huge = b'{"type": "' + b"x" * (3 << 20) + b'"}'
    result = Processor(KINDS).process([Record("b", 0, 1, b"k" * 5000, huge)], {}.get, now=0.0)
    ((_, letter),) = result.dead_letters
    validator("dead_letter").validate(letter)
    assert letter["reason"] == "too_large"
    assert letter["original_truncated"] is True and letter["original_size"] == len(huge)
    assert letter["original_text"] is None
    assert len(base64.b64decode(letter["original_b64"])) == 512 * 1024
    assert len(letter["detail"]) <= 4096 and len(letter["source"]["key"]) == 1024
