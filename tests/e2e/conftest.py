from tests.integration.conftest import (  # noqa: F401 - the same real-parts harness
    deployment,
    kafka_bootstrap,
    producer,
    pytest_runtest_makereport,
    redis_client,
    redis_url,
)
