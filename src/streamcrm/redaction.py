"""Secrets out of every log line and error message: the one place that masks them.

:func:`redact_url` masks the password of a URL; :func:`redis_address` is what logs say
of a Redis (host, port, database: never the user or password); :func:`scrub` masks known secrets and any
URL's password in free text; :func:`install_log_scrubber` applies ``scrub`` to every log
record the process makes (Faust's, aiokafka's and ours), whatever handler prints it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from streamcrm.config import Settings

MASK = "***"
# scheme://user:password@ : the password is whatever runs to the last '@' of the netloc.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^\s:/@]*:)(?P<pw>[^\s/]*)(?P<at>@)")


def redact_url(url: str) -> str:
    """The URL with its password masked (the user, host and database stay).

    >>> redact_url("redis://:s3cret@cache:6379/0")
    'redis://:***@cache:6379/0'
    >>> redact_url("rediss://alice:p%40ss@10.0.0.5:6380/1?ssl_ca_certs=/ca.pem")
    'rediss://alice:***@10.0.0.5:6380/1?ssl_ca_certs=/ca.pem'
    >>> redact_url("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    """
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}", url)


def redis_address(url: str) -> str:
    """Host, port and database of a Redis URL, for logs: never the user or password.

    >>> redis_address("redis://user:s3cret@cache.internal:6380/2")
    'cache.internal:6380/2'
    >>> redis_address("rediss://:pw@10.0.0.5")
    '10.0.0.5:6379/0'
    >>> redis_address("unix:///run/redis.sock?db=1")
    'unix:/run/redis.sock'
    """
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    host = parts.hostname or "localhost"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    db = parts.path.strip("/") or "0"
    return f"{host}:{port}/{db}"


def url_password(url: str | None) -> str | None:
    """The password a URL carries, decoded, if any.

    >>> url_password("redis://alice:p%40ss@host/0"), url_password("redis://host/0")
    ('p@ss', None)
    """
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret and any URL's password masked.

    >>> scrub("login failed for token abc123 at redis://:pw@h/0", ["abc123"])
    'login failed for token *** at redis://:***@h/0'
    """
    text = redact_url(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def secrets_of(settings: Settings) -> list[str]:
    """Every secret the settings hold, raw and as it appears in a URL."""
    redis_password = url_password(settings.redis_url)
    found = [settings.kafka_security.password, settings.web_token, redis_password]
    if settings.redis_url and redis_password:
        found.append(urlsplit(settings.redis_url).password)  # as written (percent-encoded)
    return [s for s in found if s]


def install_log_scrubber(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` (and URL passwords) in every log record made from now on.

    A record factory rather than a handler filter: Faust replaces the handlers when its
    worker starts, the factory stays. Only records a logger lets through are built, so
    this costs nothing for the debug calls a worker skips.
    """
    known = [s for s in secrets if s]
    previous = logging.getLogRecordFactory()
    if getattr(previous, "streamcrm_scrubber", False):
        previous = previous.__wrapped__  # type: ignore[attr-defined]

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: leave the record as it is
            return record
        clean = scrub(message, known)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    factory.streamcrm_scrubber = True  # type: ignore[attr-defined]
    factory.__wrapped__ = previous  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
