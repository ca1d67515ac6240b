"""``replay``'s simulated-cluster flags (argparse only: the CLI imports it at start-up)."""

from __future__ import annotations

import argparse

DEFAULT_EVERY_S = 60.0  # event-time seconds between two exchanges of learner deltas


def add_worker_flags(rep: argparse.ArgumentParser) -> None:
    """``replay --workers N`` and how the simulated workers share what they learn."""
    rep.add_argument(
        "--workers", type=int, default=1,
        help="simulate N workers, customers split by Kafka's partitioner over --partitions (default 1)",
    )  # fmt: skip
    rep.add_argument(
        "--sharing", choices=["on", "off"], default="off",
        help="workers exchange population-learner deltas (default off: each learns alone)",
    )  # fmt: skip
    rep.add_argument(
        "--share-every", type=float, default=DEFAULT_EVERY_S, metavar="SECONDS",
        help=f"event-time seconds between exchanges (default {DEFAULT_EVERY_S:g})",
    )  # fmt: skip
    rep.add_argument(
        "--share-delay", type=float, default=0.0, metavar="SECONDS",
        help="event-time seconds a published delta takes to arrive (default 0)",
    )  # fmt: skip
    rep.add_argument(
        "--pricing", choices=["on", "off"], default="on",
        help="price suggestions (one owner of every SKU; default on; off: to time their cost)",
    )  # fmt: skip
