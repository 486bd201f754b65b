"""Issue 23: is the local LLM worth it as a command generator for hard turns? Measured, not
assumed: the embedded LLM service with a SHORT JSON schema (action + order reference — the
split the issue suggests) on long, compound, misspelt requests, against the deterministic
path the assistant uses (NLU + addons/request_router.py + the resolvers, no LLM).

    .venv/bin/python bench/request_llm_bench.py [--repeat 1]

Starts the real LLM service (`python -m llm`, services venv) on a free port, asks each message
once per repeat, prints per-call latency p50/p95 and how often the action and the order id
were right; writes results/request_llm_bench.json. The messages are the project's own
(written for this bench), not from any held-out evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import free_port, services_python, wait_http  # noqa: E402

ACTIONS = ["cancel", "return", "exchange", "modify_items", "change_address", "change_payment",
           "order_status", "track", "product_question", "other"]
SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ACTIONS},
        "order_id": {"type": "string", "pattern": "^(#W[0-9]{7}|none|last)$"},
    },
    "required": ["action", "order_id"],
}
PROMPT = ("You route messages of an online store's customers. Reply with the action the "
          "customer asks for and the order id (#W + 7 digits, 'last' for their most recent "
          "order, 'none' if not given).")
# (message, action, order id) — hard turns: products named, typos, exceptions, two asks
CASES = [
    ("i dont need the kettle or the bookshelf from w1620235 anymore, can u cancle them?",
     "cancel", "#W1620235"),
    ("For #W9655299 I want to exchange my earbuds (white, 8 hours) for black ones with 4 hours",
     "exchange", "#W9655299"),
    ("return everything from order w3113816 except the office chair, they dont fit in my office",
     "return", "#W3113816"),
    ("hey so the blue water bottle in W9903153, can i get the 1000ml one instead b4 it ships",
     "modify_items", "#W9903153"),
    ("could you change the default address on my account to my daughters place in chicago",
     "change_address", "none"),
    ("pls put order 2918688 on my paypal instead of the card", "change_payment", "#W2918688"),
    ("wheres my last order?? been waiting forever", "track", "last"),
    ("is the 17 inch laptop with 1tb in stock in silver", "product_question", "none"),
    ("the skateboard from w1539823 arrived with a cracked deck, i want my money back",
     "return", "#W1539823"),
    ("my most recent order, can i still cancel it? bought it by accident", "cancel", "last"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    port = free_port()
    env = dict(os.environ, LLM_PORT=str(port), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    (ROOT / "results").mkdir(exist_ok=True)
    with open(ROOT / "results" / "request_llm_bench.log", "w") as log:
        service = subprocess.Popen([services_python(), "-m", "llm"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", timeout=300)
        latencies, action_ok, order_ok, rows = [], 0, 0, []
        for _ in range(args.repeat):
            for text, action, order_id in CASES:
                body = {"messages": [{"role": "system", "content": PROMPT},
                                     {"role": "user", "content": text}],
                        "max_tokens": 40, "temperature": 0,
                        "response_format": {"type": "json_schema", "json_schema": {
                            "name": "request", "schema": SCHEMA}}}
                start = time.perf_counter()
                reply = requests.post(f"{base}/v1/chat/completions", json=body, timeout=120)
                latencies.append(time.perf_counter() - start)
                try:
                    got = json.loads(reply.json()["choices"][0]["message"]["content"])
                except (KeyError, ValueError, TypeError):
                    got = {}
                action_ok += got.get("action") == action
                order_ok += got.get("order_id") == order_id
                rows.append({"text": text, "want": [action, order_id], "got": got,
                             "seconds": round(latencies[-1], 2)})
        n = len(latencies)
        result = {
            "calls": n,
            "p50_s": round(statistics.median(latencies), 2),
            "p95_s": round(sorted(latencies)[max(0, int(0.95 * n) - 1)], 2),
            "action_right": f"{action_ok}/{n}", "order_right": f"{order_ok}/{n}",
            "rows": rows,
        }
        (ROOT / "results" / "request_llm_bench.json").write_text(json.dumps(result, indent=2))
        for row in rows:
            print(f"{row['seconds']:5.2f}s want {row['want']} got {row['got']}")
        print(f"LLM short-schema router: {n} calls, p50 {result['p50_s']} s, p95 "
              f"{result['p95_s']} s, action right {result['action_right']}, order right "
              f"{result['order_right']}")
    finally:
        service.terminate()
        service.wait(timeout=30)


if __name__ == "__main__":
    main()
