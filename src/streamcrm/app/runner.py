"""Run one worker process: make sure the topics exist, then hand over to Faust's Worker."""

from __future__ import annotations

import asyncio

import faust

from streamcrm.app.factory import create_app
from streamcrm.app.heap import start_frozen
from streamcrm.config import Settings
from streamcrm.kafka_admin import ensure_topics
from streamcrm.logs import logging_config


def run_worker(settings: Settings) -> int:
    asyncio.run(ensure_topics(settings))
    # Faust's Worker installs its own loop and signal handlers; it stops on SIGTERM/SIGINT.
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    start_frozen()  # app/heap.py: what is built so far lives as long as the process
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.upper(),
        quiet=True,
        logging_config=logging_config(settings.log_level, settings.log_format),
    )
    worker.execute_from_commandline()
    return 0
