"""Summarise the latest reliability run (results/reliability/measurements.jsonl) into
docs/reliability.md, between <!-- BEGIN results --> and <!-- END results -->.

    .venv/bin/python -m tests.reliability.report
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone

from tests.reliability.conftest import RESULTS, ROOT

DOCS = ROOT / "docs" / "reliability.md"


def latest_run() -> list[dict]:
    """The measurements of the last run (a gap of > 30 min starts a new run)."""
    rows = [json.loads(x) for x in RESULTS.read_text().splitlines() if x.strip()]
    rows.sort(key=lambda r: r["at"])
    start = 0
    for i in range(1, len(rows)):
        if rows[i]["at"] - rows[i - 1]["at"] > 1800:
            start = i
    return rows[start:]


def build(rows: list[dict]) -> str:
    by = {}
    for row in rows:
        by.setdefault(row["kind"], []).append(row)
    when = datetime.fromtimestamp(rows[-1]["at"], timezone.utc)
    out = [f"## Results of the run of {when:%Y-%m-%d %H:%M} UTC", ""]
    if "shop_fault_order_status" in by or "llm_fault_question" in by:
        out += ["### Faults (one row per injected fault; reply time seen by the shopper)", "",
                "| where | fault | reply in | requests at the proxy | reply |",
                "|---|---|---:|---:|---|"]
        for kind, label, count in (("shop_fault_order_status", "shop, order status", "shop_gets"),
                                   ("shop_fault_identification", "shop, identification", None),
                                   ("shop_fault_handoff_write", "shop, handoff (write)", "posts"),
                                   ("llm_fault_question", "LLM, free question", "llm_posts")):
            for row in by.get(kind, []):
                n = row.get(count, "") if count else ""
                out.append(f"| {label} | {row['fault']} | {row['seconds']:.1f} s | {n} | "
                           f"{row['reply'][:110].replace(chr(10), ' ')}… |")
        out.append("")
    for row in by.get("bad_input_storm", []):
        out += [f"- **Bad input**: {row['messages']} generated messages in "
                f"{row['conversations']} conversations, {row['seconds']:.0f} s: "
                f"{row['failures']} unanswered; latency p50 {row['p50']:.2f} s, p95 "
                f"{row['p95']:.2f} s, max {row['max']:.1f} s."]
    for row in by.get("bad_input_tracker", []):
        if "answered_by_the_channel" in row:
            out += [f"- Tracker audit of the storm: every message Rasa answered stored, in "
                    f"order; {row['answered_by_the_channel']} answered by the channel itself "
                    "without being stored (over 2,000 characters: \"too long\"; without text: "
                    "\"I didn't get any text\")."]
        else:  # runs before the channel guard
            out += [f"- Tracker audit of the storm: every answered message stored, in order; "
                    f"{row['skipped_without_content']} messages without content (empty, only "
                    "control characters) skipped by Rasa (no event, empty reply)."]
    for row in by.get("authorization", []):
        out += [f"- **Authorization**: {row['orders']} orders of other customers, "
                f"{row['questions']} questions (typed, `/order_status{{...}}`, "
                f"`/track_order{{...}}`) by a shopper identified as Mei: {row['leaks']} leaks."]
    for row in by.get("restart", []):
        out += [f"- Restart of {row['process']} after SIGKILL: {row['seconds']:.0f} s."]
    for row in by.get("shop_crash_storm", []):
        out += [f"- **Shop SIGKILL during a write storm**: {row['orders']} cancellations "
                f"(8 threads, Idempotency-Keys); {row['answered']} answered before the kill, "
                f"{row['failed_by_crash']} cut off; after the restart {row['changed']} orders "
                f"fully changed, {row['untouched']} untouched, none half-done (status, refunds, "
                "gift-card balances, stored key); replaying every write with its key changed "
                "each remaining order exactly once."]
    for row in by.get("oversized", []):
        results = ", ".join(f"{name} {secs:.1f} s ({status or 'no answer'})"
                            for name, secs, status in row["results"])
        out += [f"- **100 KB messages** (answered \"too long\" by the channel): {results}; "
                f"another conversation waited up to {row['bystander_max']:.1f} s meanwhile."]
    return "\n".join(out) + "\n"


def main() -> int:
    body = build(latest_run())
    text = DOCS.read_text()
    block = f"<!-- BEGIN results -->\n{body}<!-- END results -->"
    DOCS.write_text(re.sub(r"<!-- BEGIN results -->.*?<!-- END results -->",
                           lambda _m: block, text, flags=re.DOTALL))
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
