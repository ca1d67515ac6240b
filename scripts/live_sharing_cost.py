"""What --share-learning costs two live workers: CPU seconds per 1,000 input events (both
workers), with the exchange off and on, and the learning topic's bytes per input event.

    .venv/bin/python scripts/live_sharing_cost.py [--events 20000] [--rounds 2]

Embedded broker, 4 partitions, no Redis; rounds interleave off and on (the machine is
shared: compare within a run). CPU is each worker process's user + system time from
/proc while the log is applied (start-up excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from streamcrm.config import Settings, Topics
from streamcrm.publish import publish
from streamcrm.synthetic import generate
from streamcrm.tansu import embedded_broker, free_port


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())


def wait(ports: list[int], test, timeout: float = 300.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = [stats(p) for p in ports]
            if test(got):
                return got
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("timed out")


def run(bootstrap: str, workdir: Path, events: int, share: bool) -> dict:
    run_id = uuid.uuid4().hex[:8]
    topics = Topics().prefixed(f"c{run_id}.")
    ports, procs = [free_port(), free_port()], []
    extra = ["--share-learning", "--share-every", "1s"] if share else []
    for n, port in enumerate(ports):
        cmd = [sys.executable, "-m", "streamcrm", "worker", "--broker", bootstrap,
               "--partitions", "4", "--app-id", f"cost-{run_id}", "--web-port", str(port),
               "--data-dir", str(workdir / f"{run_id}-{n}"), "--fast-rebalance", "--no-redis",
               "--topic-browse", topics.browse, "--topic-cart", topics.cart,
               "--topic-order", topics.order, "--topic-deadletter", topics.deadletter,
               "--topic-coupons", topics.coupons, "--topic-profiles", topics.profiles,
               "--topic-offers", topics.offers, "--topic-erasures", topics.erasures, *extra]  # fmt: skip
        log = open(workdir / f"{run_id}-{n}.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    try:
        wait(ports, lambda s: all(len(x["partitions"]) == 2 for x in s))
        before = [cpu_s(p.pid) for p in procs]
        began = time.monotonic()
        settings = Settings(broker=bootstrap, partitions=4, topics=topics)
        records = [(r.topic_kind, r.key, r.value) for r in generate(events, seed=3, customers=3000)]
        asyncio.run(publish(settings, records))
        done = wait(ports, lambda s: sum(x["events_in"] for x in s) >= events
                    and all(x["buffered"] == 0 for x in s))  # fmt: skip
        applied_s = time.monotonic() - began
        time.sleep(2.5)  # the last exchanges (--share-every 1s), idle time alike in both modes
        done = [stats(p) for p in ports]
        cpu = [cpu_s(p.pid) - b for p, b in zip(procs, before, strict=True)]
        sent = sum((x["sharing"] or {}).get("bytes_sent", 0) for x in done)
        merged = [(x["sharing"] or {}).get("deltas_merged", 0) for x in done]
        return {"share": share, "applied_s": round(applied_s, 1),
                "cpu_s_per_1000_events": round(sum(cpu) / events * 1000, 3),
                "learning_bytes_per_event": round(sent / events, 1),
                "deltas_merged": merged}  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, embedded_broker(Path(tmp) / "broker.log") as bootstrap:
        for _ in range(args.rounds):
            for share in (False, True):
                print(json.dumps(run(bootstrap, Path(tmp), args.events, share)), flush=True)


if __name__ == "__main__":
    main()
