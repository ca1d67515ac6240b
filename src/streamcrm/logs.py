"""Log output: text lines, or one JSON object per line (``--log-format json``) for log
shippers that index fields rather than parse text.

>>> import logging
>>> record = logging.LogRecord("streamcrm.x", logging.WARNING, "f.py", 1, "lag %d", (7,), None)
>>> record.created = 0.0
>>> JsonFormatter().format(record)
'{"ts":"1970-01-01T00:00:00.000Z","level":"warning","logger":"streamcrm.x","message":"lag 7"}'
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ms), level, logger, message, and the
    traceback as ``exc`` when there is one (so a record never spans lines)."""

    def format(self, record: logging.LogRecord) -> str:
        ms = int(record.created * 1000) % 1000
        body: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{ms:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body).decode()


def logging_config(level: str, fmt: str) -> dict[str, Any] | None:
    """The ``dictConfig`` Faust's worker is given; None: Faust's own (text) setup."""
    if fmt == "text":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "level": level.upper(),
            }
        },
        "root": {"level": level.upper(), "handlers": ["default"]},
    }


def setup(fmt: str = "text", level: int = logging.WARNING) -> None:
    """Logging of a command that is not a Faust worker (the worker's is Faust's)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
