"""Secrets are masked in URLs, free text and every log record; /customers needs the token."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcrm.config import Settings
from streamcrm.kafka_security import KafkaSecurity
from streamcrm.redaction import install_log_scrubber, redact_url, scrub, secrets_of
from streamcrm.web_access import access_refused

passwords = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=8, max_size=40
)


@given(password=passwords, user=st.sampled_from(["", "alice", "svc.crm"]))
def test_a_url_password_is_masked_whatever_it_holds(password: str, user: str) -> None:
    url = f"rediss://{user}:{quote(password, safe='')}@cache.internal:6380/2?ssl_ca_certs=/ca.pem"
    assert redact_url(url) == f"rediss://{user}:***@cache.internal:6380/2?ssl_ca_certs=/ca.pem"
    assert password not in scrub(f"error at {url}", [password])


def test_every_log_record_is_scrubbed_whoever_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(
        redis_url="redis://:r%40dis-pw@h:6379/0",
        kafka_security=KafkaSecurity("SASL_SSL", username="u", password="kafka-pw-123"),  # noqa: S106
        web_token="tok-456789",  # noqa: S106
    )
    secrets = secrets_of(settings)
    assert {"r@dis-pw", "r%40dis-pw", "kafka-pw-123", "tok-456789"} <= set(secrets)
    previous = logging.getLogRecordFactory()
    install_log_scrubber(secrets)
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("aiokafka.conn").info("login %s / %s", "kafka-pw-123", "tok-456789")
            logging.getLogger("faust").warning("redis %s", settings.redis_url)
    finally:
        logging.setLogRecordFactory(previous)
    text = caplog.text
    for secret in secrets:
        assert secret not in text
    assert "redis redis://:***@h:6379/0" in text


@pytest.mark.parametrize(
    ("token", "header", "status"),
    [
        (None, None, 403),
        (None, "Bearer anything", 403),
        ("t0ken-abc", None, 401),
        ("t0ken-abc", "Basic t0ken-abc", 401),
        ("t0ken-abc", "Bearer t0ken-ab", 401),
        ("t0ken-abc", "bearer t0ken-abc", None),
    ],
)
def test_customers_need_the_bearer_token_and_are_off_without_one(
    token: str | None, header: str | None, status: int | None
) -> None:
    refused = access_refused(token, header)
    assert (refused[0] if refused else None) == status
    if refused:
        assert "STREAMCRM_WEB_TOKEN" in refused[1]
