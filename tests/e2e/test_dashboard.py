"""The live dashboard in headless Chromium: it updates itself and agrees with /metrics."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

from streamcrm.config import Settings
from streamcrm.publish import publish_synthetic
from tests.integration.conftest import ARTIFACTS, Deployment

from .cdp import Page, open_page

SCREENSHOT = ARTIFACTS / "dashboard.png"


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own worker
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


async def events_in(page: Page) -> int:
    text = await page.evaluate("document.getElementById('events-in').textContent")
    return int(text.replace(",", "")) if text and text != "-" else 0


async def test_dashboard_moves_with_the_stream_and_matches_metrics(deployment: Deployment) -> None:
    worker = deployment.start_worker()
    worker.wait_for(
        lambda s: len(s["partitions"]) == deployment.partitions, what="partitions assigned"
    )
    settings = Settings(
        broker=deployment.bootstrap, partitions=deployment.partitions, topics=deployment.topics
    )
    async with open_page(worker.base_url + "/dashboard") as page:
        # Traffic starts once the page is open: on a loaded machine the browser took longer
        # to show a first figure than the traffic took to end (a CI run saw 6000 twice).
        traffic = asyncio.create_task(
            publish_synthetic(settings, 6000, seed=5, customers=300, bad=30, rate=600)
        )
        first = 0
        for _ in range(40):  # until the page shows traffic
            await asyncio.sleep(0.5)
            first = await events_in(page)
            if first > 0:
                break
        second = first
        for _ in range(40):  # it updates itself, no reload (polled: a loaded machine is slow)
            await asyncio.sleep(0.5)
            second = await events_in(page)
            if second > first:
                break
        assert 0 < first < second, (first, second)
        assert await page.evaluate("document.getElementById('status').textContent") == "live"
        sent = await traffic
        worker.wait_for(lambda s: s["events_in"] >= sent, what="all traffic in")
        await asyncio.sleep(2.5)  # at least two more server-sent updates
        shown = int(
            (await page.evaluate("document.getElementById('events-in').textContent")).replace(
                ",", ""
            )
        )
        dead = int(
            (await page.evaluate("document.getElementById('dead-letters').textContent")).replace(
                ",", ""
            )
        )
        total = sum(
            metric(worker.base_url + "/metrics", f'streamcrm_events_in_total{{topic="{t}"}}')
            for t in deployment.topics.inputs()
        )
        assert shown == sent == total
        assert dead == 30
        rows = await page.evaluate("document.querySelectorAll('#decisions tr').length")
        assert rows > 0  # the latest decisions with their reasons are on the page
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(SCREENSHOT)
    assert Path(SCREENSHOT).stat().st_size > 10_000
