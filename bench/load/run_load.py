"""Load test: >= 50 simulated shoppers through whole flows for >= 5 minutes, then an audit of the
SQL tracker store against what was sent. Writes its section of docs/benchmarks.md.

    .venv/bin/python bench/load/run_load.py [--users 50] [--spawn-rate 5] [--minutes 5]

Starts a private stack like tests/conversations/harness.py (real shop, action server, Rasa with
the latest model in models/ and the SQL tracker store, on free ports; the LLM service is not
started, as in the harness: the flows need none), runs bench/load/locustfile.py headless with
locust from .venv-services, and then, per conversation, compares the user messages stored in
the tracker store (in event order) with the messages the shopper sent and Rasa confirmed: zero
lost, zero extra, zero reordered. Exit status 1 if any request failed or any event is off.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conversations.harness import Stack, remove_stack, start_stack  # noqa: E402

# every simulated shopper comes from 127.0.0.1: the per-client rate limits would refuse the
# load (addons/rate_limits.py); the harness turns them off too, this says it where it matters
NO_RATE_LIMITS = {"rasa": {"RATE_LIMITS": "off"}}

LOCUST = ROOT / ".venv-services" / "bin" / "locust"
DOCS = ROOT / "docs" / "benchmarks.md"


# ---------------------------------------------------------------- helpers
def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and all its descendants, from /proc (MiB)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def replace_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the block between <!-- BEGIN name --> and <!-- END name -->."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {name} -->.*?<!-- END {name} -->", re.DOTALL)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n")
    path.write_text(text)


def customers(stack: Stack, n: int = 60) -> list[dict]:
    rows = stack.shop_query(
        "SELECT c.user_id, c.email, c.first_name, c.last_name, c.zip, "
        "group_concat(o.order_id) AS orders FROM customers c "
        "JOIN orders o ON o.user_id = c.user_id GROUP BY c.user_id ORDER BY c.user_id LIMIT ?",
        (n,))
    return [{"user_id": r["user_id"], "email": r["email"], "first": r["first_name"],
             "last": r["last_name"], "zip": r["zip"], "orders": r["orders"].split(",")[:3]}
            for r in rows]


# ---------------------------------------------------------------- audit
def audit(stack: Stack, sent_file: Path) -> dict:
    """Compare the tracker store's user events, per conversation, with what was sent."""
    lines = [json.loads(x) for x in sent_file.read_text().splitlines() if x.strip()]
    flow_stats = next((x["flow_stats"] for x in lines if "flow_stats" in x), {})
    sent = {x["sender"]: x for x in lines if "sender" in x}
    rows = stack.tracker_query(
        "SELECT id, sender_id, type_name, timestamp, data FROM events "
        "WHERE sender_id LIKE 'load-%' ORDER BY id")
    stored: dict[str, list[str]] = {}
    events_per_sender: dict[str, int] = {}
    last_ts: dict[str, float] = {}
    out_of_order_ts = 0
    for row in rows:
        sender = row["sender_id"]
        events_per_sender[sender] = events_per_sender.get(sender, 0) + 1
        if row["timestamp"] < last_ts.get(sender, 0.0):
            out_of_order_ts += 1
        last_ts[sender] = row["timestamp"]
        if row["type_name"] == "user":
            stored.setdefault(sender, []).append(json.loads(row["data"]).get("text"))
    lost = extra = reordered = in_flight_stored = 0
    bad: list[str] = []
    for sender, record in sent.items():
        want, got = record["sent"], stored.get(sender, [])
        if record.get("in_flight") is not None and got == want + [record["in_flight"]]:
            in_flight_stored += 1  # sent when the run stopped, answered after: stored, fine
            continue
        if got == want:
            continue
        if sorted(got) == sorted(want):
            reordered += 1
        elif len(got) < len(want):
            lost += len(want) - len(got)
        else:
            extra += len(got) - len(want)
        bad.append(sender)
    unknown = sorted(set(stored) - set(sent))
    return {
        "conversations": len(sent),
        "user_messages_sent": sum(len(r["sent"]) for r in sent.values()),
        "user_events_stored": sum(len(v) for v in stored.values()),
        "events_stored": len(rows),
        "lost": lost, "extra": extra, "reordered_conversations": reordered,
        "timestamps_out_of_order": out_of_order_ts, "unknown_conversations": len(unknown),
        "in_flight_at_stop_stored": in_flight_stored, "bad_conversations": bad[:10],
        "flow_stats": flow_stats,
    }


# ---------------------------------------------------------------- locust stats
def read_stats(prefix: Path) -> tuple[dict, list[dict]]:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    steps = [r for r in rows if r["Name"] != "Aggregated"]
    return total, steps


def section(args: argparse.Namespace, total: dict, steps: list[dict], result: dict,
            rss: dict, load_before: str, load_after: str, seconds: float) -> str:
    requests_n, failures = int(total["Request Count"]), int(total["Failure Count"])
    flows = result["flow_stats"]
    ok = failures == 0 and not (result["lost"] or result["extra"]
                                or result["reordered_conversations"])
    lines = [
        "## Load: simulated shoppers through whole flows",
        "",
        f"`make load` (bench/load/run_load.py + bench/load/locustfile.py, locust 2.47), run "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on this 2-core machine shared with "
        f"other jobs: load average {load_before} before, {load_after} after.",
        "",
        f"- **{args.users} concurrent shoppers** (spawned {args.spawn_rate}/s) for "
        f"**{seconds / 60:.1f} min**, each a whole conversation per iteration with its own "
        "sender id: greet, ask for an order, identify (80 % email, 20 % name + zip), order "
        "status, tracking, a product question, an FAQ, goodbye; 1–3 s think time between "
        "messages. Real shop, action server, Rasa (latest model, SQL tracker store on SQLite); "
        "the LLM service not running (no flow needs it).",
        f"- **Requests: {requests_n}, failures: {failures}** "
        f"({'zero errors' if failures == 0 else 'ERRORS'}); throughput "
        f"**{float(total['Requests/s']):.2f} turns/s**.",
        f"- **Latency per turn: p50 {total['50%']} ms, p95 {total['95%']} ms, "
        f"p99 {total['99%']} ms** (max {float(total['Max Response Time']):.0f} ms).",
        f"- **Tracker store audit**: {result['conversations']} conversations, "
        f"{result['user_messages_sent']} user messages sent and confirmed, "
        f"{result['user_events_stored']} user events stored ({result['events_stored']} events "
        f"in all): lost {result['lost']}, extra {result['extra']}, conversations reordered "
        f"{result['reordered_conversations']}, timestamps out of order "
        f"{result['timestamps_out_of_order']}, unknown conversations "
        f"{result['unknown_conversations']}"
        + (f"; {result['in_flight_at_stop_stored']} message(s) in flight at the stop were "
           "stored after it" if result["in_flight_at_stop_stored"] else "") + ".",
        f"- Flows completed: {flows.get('flows', 0)}; identification succeeded in "
        f"{flows.get('identified', 0)} of "
        f"{flows.get('identified', 0) + flows.get('not_identified', 0)} tries; "
        f"empty replies: {flows.get('empty_replies', 0)}.",
        "- Peak memory (RSS, process and children) during the run: "
        + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in rss.items()) + ".",
        f"- Verdict: **{'pass' if ok else 'FAIL'}**.",
        "",
        "| step | requests | failures | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in steps:
        lines.append(f"| {row['Name']} | {row['Request Count']} | {row['Failure Count']} | "
                     f"{row['50%']} | {row['95%']} | {row['99%']} | "
                     f"{float(row['Max Response Time']):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=5)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "load")
    parser.add_argument("--docs", type=Path, default=DOCS, help="'' to skip writing docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = loadavg()
    stack = start_stack(overrides=NO_RATE_LIMITS)
    try:
        customers_file = args.out / "customers.json"
        customers_file.write_text(json.dumps(customers(stack)))
        sent_file = args.out / "sent.jsonl"
        env = {**os.environ, "LOAD_CUSTOMERS": str(customers_file),
               "LOAD_SENT_FILE": str(sent_file), "PYTHONUNBUFFERED": "1"}
        rss: dict[str, float] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(5):
                for name, proc in stack.processes.items():
                    rss[name] = max(rss.get(name, 0.0), tree_rss_mib(proc.popen.pid))

        threading.Thread(target=sample, daemon=True).start()
        started = time.monotonic()
        command = [str(LOCUST), "-f", str(ROOT / "bench" / "load" / "locustfile.py"),
                   "--headless", "-u", str(args.users), "-r", str(args.spawn_rate),
                   "-t", f"{int(args.minutes * 60)}s", "--stop-timeout", "120",
                   "--host", stack.rasa_url, "--csv", str(args.out / "locust"),
                   "--only-summary", "--loglevel", "WARNING"]
        print("running:", " ".join(command), flush=True)
        subprocess.run(command, env=env, cwd=ROOT, check=False)
        seconds = time.monotonic() - started
        done.set()
        load_after = loadavg()
        time.sleep(2)  # let the last in-flight turns reach the tracker store
        total, steps = read_stats(args.out / "locust")
        result = audit(stack, sent_file)
    finally:
        remove_stack(stack)
    print(json.dumps({"total": total, "audit": result, "rss_mib": rss}, indent=1))
    body = section(args, total, steps, result, rss, load_before, load_after, seconds)
    print(body)
    if str(args.docs):
        replace_section(args.docs, "load", body)
    failed = int(total["Failure Count"]) or result["lost"] or result["extra"] or result[
        "reordered_conversations"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
