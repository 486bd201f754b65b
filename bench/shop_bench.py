"""Shop backend latency and throughput: an order read and an order write at concurrency 16.

Starts `python -m shop` in its own process on a throwaway seeded SQLite copy (or on
SHOP_BENCH_DATABASE_URL), then drives it with httpx2's async client:
  1. reads at a fixed 200 requests/s (open loop, at most 16 in flight) -> p50/p95 vs the target,
  2. reads as fast as 16 concurrent clients go -> throughput,
  3. writes (new shipping address of pending orders) as fast as 16 clients go.
Prints a table and writes it into docs/shop.md between the bench markers.

Run: .venv-services/bin/python bench/shop_bench.py [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shop.db import init_db, make_engine  # noqa: E402
from tests.support import free_port  # noqa: E402

DOC = ROOT / "docs" / "shop.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
CONCURRENCY = 16


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, lat: list[float], errors: int, wall: float) -> dict[str, Any]:
    return {"name": name, "n": len(lat), "errors": errors, "rps": len(lat) / wall,
            "p50": pct(lat, 50) * 1000, "p95": pct(lat, 95) * 1000, "p99": pct(lat, 99) * 1000,
            "mean": statistics.fmean(lat) * 1000}


async def open_loop(client: httpx2.AsyncClient, targets: list[tuple[str, dict[str, str]]],
                    rate: float, seconds: float) -> tuple[list[float], int, float]:
    """Requests at a fixed rate (a request that finds 16 in flight waits for a slot)."""
    sem = asyncio.Semaphore(CONCURRENCY)
    lat: list[float] = []
    errors = 0
    total = int(rate * seconds)

    async def one(i: int) -> None:
        nonlocal errors
        url, headers = targets[i % len(targets)]
        async with sem:
            t = time.perf_counter()
            r = await client.get(url, headers=headers)
            lat.append(time.perf_counter() - t)
            errors += r.status_code != 200

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return lat, errors, time.perf_counter() - start


async def closed_loop(client: httpx2.AsyncClient, make: Any, seconds: float
                      ) -> tuple[list[float], int, float]:
    """16 clients, each sending its next request as soon as the last one answered."""
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    counter = 0

    async def worker() -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop:
            counter += 1
            t = time.perf_counter()
            r = await make(counter)
            lat.append(time.perf_counter() - t)
            errors += r.status_code != 200

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return lat, errors, time.perf_counter() - start


async def run(base: str, token: str, seconds: float, orders: dict[str, Any]) -> list[dict]:
    reads = [(f"/orders/{quote(o['order_id'], safe='')}", {"X-Customer-Id": o["user_id"]})
             for o in list(orders.values())[:500]]
    pending = [o for o in orders.values() if o["status"] == "pending"]
    limits = httpx2.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx2.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                  limits=limits, timeout=30) as client:
        await open_loop(client, reads, 100, 2)  # warm up connections and caches
        results = []
        lat, err, wall = await open_loop(client, reads, 200, seconds)
        results.append(summary("read GET /orders/{id}, 200 req/s fixed", lat, err, wall))
        def read(i: int) -> Any:
            url, headers = reads[i % len(reads)]
            return client.get(url, headers=headers)

        lat, err, wall = await closed_loop(client, read, seconds)
        results.append(summary("read GET /orders/{id}, max rate", lat, err, wall))

        async def write(i: int) -> Any:
            order = pending[i % len(pending)]
            body = {"address1": f"{i} Bench Street", "address2": "", "city": "Austin",
                    "country": "USA", "state": "TX", "zip": "78701"}
            return await client.post(f"/orders/{quote(order['order_id'], safe='')}/address",
                                     json=body, headers={"X-Customer-Id": order["user_id"]})

        lat, err, wall = await closed_loop(client, write, seconds)
        results.append(summary("write POST /orders/{id}/address, max rate", lat, err, wall))
    return results


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, " \
        f"{platform.system()}"


def write_doc(table: str) -> None:
    if not DOC.exists():
        return
    text = DOC.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SHOP_WORKERS", "1")))
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args()

    load = os.getloadavg()
    token = secrets.token_hex(16)
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix="shop-bench-")
    url = os.environ.get("SHOP_BENCH_DATABASE_URL") or f"sqlite:///{tmp.name}/shop.db"
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    env = {**os.environ, "SHOP_API_TOKEN": token, "SHOP_PORT": str(port),
           "SHOP_DATABASE_URL": url, "SHOP_WORKERS": str(args.workers)}
    server = subprocess.Popen([sys.executable, "-m", "shop"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("shop did not start")
            time.sleep(0.2)
        orders = json.loads((ROOT / "shop" / "data" / "db.json").read_text())["orders"]
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        results = asyncio.run(run(base, token, args.seconds, orders))
    finally:
        server.terminate()
        server.wait(timeout=20)
        tmp.cleanup()

    backend = url.split(":", 1)[0]
    lines = [
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {machine()}; server: `python -m shop`"
        f" ({args.workers} uvicorn worker(s), {backend}) in its own process, load generator "
        f"(httpx2 async, {CONCURRENCY} connections) on the same machine; {args.seconds:g} s per "
        f"row; load average before the run {load[0]:.1f} / after {os.getloadavg()[0]:.1f} "
        "(the machine is shared: other jobs compete for the 2 cores).",
        "",
        "| scenario | requests | errors | throughput (req/s) | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['n']} | {r['errors']} | {r['rps']:.0f} | "
                     f"{r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} |")
    read_p95 = results[0]["p95"]
    verdict = "met" if read_p95 < 20 else "NOT met"
    lines += ["", f"Target p95 < 20 ms for reads at 200 req/s: **{verdict}** "
                  f"(p95 {read_p95:.1f} ms).", "",
              "Command: `.venv-services/bin/python bench/shop_bench.py"
              f" --seconds {args.seconds:g} --workers {args.workers}`"]
    table = "\n".join(lines)
    print(table)
    if not args.no_doc:
        write_doc(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
