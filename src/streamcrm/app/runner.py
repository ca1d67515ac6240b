"""Run one worker process: make sure the topics exist, then hand over to Faust's Worker."""

from __future__ import annotations

import asyncio
import gc

import faust

from streamcrm.app.factory import create_app
from streamcrm.config import Settings
from streamcrm.kafka_admin import ensure_topics


def run_worker(settings: Settings) -> int:
    asyncio.run(ensure_topics(settings))
    # Faust's Worker installs its own loop and signal handlers; it stops on SIGTERM/SIGINT.
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    # Everything imported and built so far lives as long as the process: keep the cyclic
    # GC from re-scanning it on every full collection (py-spy: full collections stalled
    # the worker for 100+ ms), and collect the young generation less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 10)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
    return 0
