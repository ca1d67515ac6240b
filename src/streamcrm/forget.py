"""``streamcrm forget CUSTOMER_ID``: publish a ``customer_erasure_requested`` (the shell).

The request goes to the order topic, keyed by the customer id, like every input event;
the worker that owns the customer erases them and publishes a ``customer_erased``
receipt to the erasures topic (schemas/README.md, PRIVACY.md).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import jsonschema_rs
import orjson

from streamcrm.cli_flags import UsageError, _add_broker_flags
from streamcrm.config import Settings
from streamcrm.contract import describe_error, validator
from streamcrm.erasure import request_event
from streamcrm.publish import publish


def add_forget_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    forget = sub.add_parser(
        "forget", help="erase a customer (right to erasure); the worker publishes a receipt"
    )
    forget.add_argument("customer_id", metavar="CUSTOMER_ID", help="the customer to forget")
    forget.add_argument(
        "--request-id",
        default=None,
        help="your reference for the request (a ticket id, no personal data), echoed in the receipt",
    )
    _add_broker_flags(forget)


def run_forget(args: argparse.Namespace, settings: Settings) -> int:
    event = request_event(
        args.customer_id, time.time(), event_id=str(uuid.uuid4()), request_id=args.request_id
    )
    try:
        validator(event["type"]).validate(event)
    except jsonschema_rs.ValidationError as exc:
        msg = (
            f"cannot send the request: {describe_error(exc)} "
            "(a customer id is 1-64 characters of A-Z a-z 0-9 . _ : @ -; "
            "a request id 1-128 of those and /)"
        )
        raise UsageError(msg) from None
    record = ("order", event["customer_id"].encode(), orjson.dumps(event))
    asyncio.run(publish(settings, [record]))
    print(
        f"erasure of {event['customer_id']} requested (event_id {event['event_id']}) on "
        f"{settings.topics.order}; the receipt will be on {settings.topics.erasures}"
    )
    return 0
