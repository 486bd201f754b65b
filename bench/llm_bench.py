"""The embedded LLM: decode speed vs the memory-bandwidth bound, service RSS, and fallback turns
over the REST channel (1, 2 and 8 concurrent shoppers).

    .venv/bin/python bench/llm_bench.py [--turns 20] [--no-doc]

1. Memory bandwidth: numpy copy of a 256 MiB array (reads + writes 512 MiB per copy).
2. Starts a private stack (shop, the real LLM service, action server, Rasa with models/).
3. Decode tokens/s of the service: the same prompt with max_tokens=1 and max_tokens=33; the time
   difference is 32 decode steps (prefill cancels out). Prefill tokens/s of a ~300-token prompt
   that shares no prefix with the one before (llama.cpp reuses a cached prefix).
4. Bound: every decode step reads all weights once (the output layer is the tied token
   embedding), so tokens/s <= bandwidth / GGUF bytes.
5. Fallback turns over REST (`POST /webhooks/rest/webhook`), one new conversation per question:
   p50 / p95 with 1 shopper (targets 2 s / 4 s); 2 and 8 shoppers at once (every one must get an
   answer or the passage, the 8 within 20 s). A turn counts only if Rasa ran action_fallback.
6. RSS of the LLM service process (the weights are mmap'd: file-backed pages count).
Writes results/llm_bench.json and the summary into docs/llm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from llm_eval import update_doc  # noqa: E402

from actions.grounding import OFFTOPIC_REPLY  # noqa: E402
from tests.conversations.harness import Stack, remove_stack, start_stack  # noqa: E402

# every simulated shopper comes from 127.0.0.1: the per-client rate limits would refuse the
# load (addons/rate_limits.py); the harness turns them off too, this says it where it matters
NO_RATE_LIMITS = {"rasa": {"RATE_LIMITS": "off"}}

GGUF_BYTES = 1_117_320_768  # Qwen2.5-Coder-1.5B-Instruct Q4_K_M: what one decode step reads
# Free-form questions, written as shoppers write them, that the NLU sends to the fallback (checked
# by a probe of 50 candidates on the trained model: most store questions match an intent or FAQ
# and never reach the LLM). A turn counts only if Rasa really ran action_fallback.
QUESTIONS = [
    "how do I reset my password?", "how do i know which size of the hiking boots fits me",
    "is the water bottle dishwasher safe", "who do i talk to about a damaged box",
    "who are you owned by?", "when is your black friday sale", "is the laptop good for gaming",
    "my neighbour took my parcel what now", "can you send me a paper invoice",
    "is the e-reader good for reading at night", "how loud is the vacuum cleaner",
    "what is the warranty on electronics?", "can i get my order gift wrapped?",
]


def bandwidth_gbs(mib: int = 256, repeats: int = 10) -> tuple[float, float]:
    """(best, median) GB/s of a 256 MiB copy; best is the hardware's reach, median what a
    process got on the shared machine."""
    src = np.ones(mib * 1024 * 1024 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2 * src.nbytes / min(times) / 1e9, 2 * src.nbytes / statistics.median(times) / 1e9


def read_bandwidth_gbs(mib: int = 1024, repeats: int = 5) -> float:
    """Best GB/s of reading a 1 GiB array with one thread per core (np.max: SIMD compares, so
    memory-bound, and it releases the GIL): what llama.cpp's decode does (read-only, every
    core); np.sum is compute-bound here (20 GB/s per core) and a one-thread copy writes too."""
    from concurrent.futures import ThreadPoolExecutor as Pool

    n = os.cpu_count() or 2
    chunks = np.array_split(np.ones(mib * 1024 * 1024 // 8, dtype=np.float64), n)
    best = 0.0
    with Pool(n) as pool:
        for _ in range(repeats):
            t0 = time.perf_counter()
            list(pool.map(np.max, chunks))
            best = max(best, mib * 1024 * 1024 / (time.perf_counter() - t0) / 1e9)
    return best


def _complete(base: str, messages: list[dict], max_tokens: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = requests.post(f"{base}/chat/completions", timeout=120, json={
        "messages": messages, "max_tokens": max_tokens, "temperature": 0, "max_time": 30})
    r.raise_for_status()
    return time.perf_counter() - t0, r.json()["usage"]


def decode_rate(base: str, repeats: int = 3) -> float:
    msgs = [{"role": "user", "content": "Write a long story about a cat who runs a shop."}]
    _complete(base, msgs, 1)  # warm-up
    rates = []
    for _ in range(repeats):
        t1, _ = _complete(base, msgs, 1)  # the prompt is cached: this is ~1 decode step
        t33, usage = _complete(base, msgs, 33)
        rates.append((usage["completion_tokens"] - 1) / max(t33 - t1, 1e-6))
    return statistics.median(rates)


def prefill_rate(base: str, repeats: int = 3) -> tuple[float, int]:
    """(prompt tokens/s, prompt tokens) of a ~300-token prompt with a fresh first line."""
    filler = " ".join(["Refunds to a credit card take 5 to 7 business days."] * 25)
    rates, n = [], 0
    for _ in range(repeats):
        msgs = [{"role": "system", "content": f"Nonce {uuid.uuid4().hex}. {filler}"},
                {"role": "user", "content": "How long do refunds take?"}]
        seconds, usage = _complete(base, msgs, 1)
        n = usage["prompt_tokens"]
        rates.append(n / seconds)
    return statistics.median(rates), n


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reply_kind(text: str) -> str:
    if text.startswith("Here is what our help pages say"):
        return "passage"
    if text.startswith("Sorry, I can't answer that"):
        return "error+passage" if "help page" in text else "error"
    if text.startswith(OFFTOPIC_REPLY[:40]):
        return "offtopic"
    return "answered"


def fallback_turn(stack: Stack, question: str) -> dict:
    sender = f"bench-llm-{uuid.uuid4().hex[:10]}"
    t0 = time.perf_counter()
    r = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook",
                      json={"sender": sender, "message": question}, timeout=120)
    seconds = time.perf_counter() - t0
    r.raise_for_status()
    text = " ".join(m.get("text", "") for m in r.json() if m.get("text"))
    events = stack.tracker(sender)["events"]
    ran = any(e.get("event") == "action" and e.get("name") == "action_fallback" for e in events)
    return {"q": question, "seconds": round(seconds, 2), "fallback": ran,
            "kind": reply_kind(text) if text else "none", "reply": text}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def concurrent(stack: Stack, questions: list[str]) -> list[dict]:
    with ThreadPoolExecutor(len(questions)) as pool:
        return list(pool.map(lambda q: fallback_turn(stack, q), questions))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    bw, bw_median = bandwidth_gbs()
    bw_read = read_bandwidth_gbs()
    stack = start_stack(with_llm=True, overrides=NO_RATE_LIMITS)
    try:
        base = stack.llm_url
        rss_idle = rss_mib(stack.pid("llm"))
        rate = decode_rate(base)
        prefill, prefill_tokens = prefill_rate(base)
        for q in QUESTIONS[:3]:  # warm-up: retriever, TF graphs, connection pools
            fallback_turn(stack, q)
        single = [fallback_turn(stack, q) for q in (QUESTIONS * 3)[: args.turns]]
        for row in single:
            print(f"{row['seconds']:5.2f}s {row['kind']:13s} fallback={row['fallback']} "
                  f"{row['q'][:55]}", flush=True)
        pair = concurrent(stack, QUESTIONS[3:5])
        eight = concurrent(stack, QUESTIONS[:8])
        rss_after = rss_mib(stack.pid("llm"))
    finally:
        remove_stack(stack)
    counted = [r["seconds"] for r in single if r["fallback"]]
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
        "load_avg_1min_before": round(load_before, 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "bandwidth_gb_s": round(bw, 1), "bandwidth_median_gb_s": round(bw_median, 1),
        "read_bandwidth_gb_s": round(bw_read, 1),
        "gguf_mb": round(GGUF_BYTES / 1e6),
        "bound_tokens_s": round(bw_read * 1e9 / GGUF_BYTES, 1),
        "bound_tokens_s_copy_bw": round(bw * 1e9 / GGUF_BYTES, 1),
        "decode_tokens_s": round(rate, 1), "prefill_tokens_s": round(prefill),
        "prefill_prompt_tokens": prefill_tokens,
        "rss_mib_idle": round(rss_idle), "rss_mib_after": round(rss_after),
        "turns": len(single), "fallback_turns": len(counted),
        "p50_s": round(pct(counted, 0.5), 2) if counted else None,
        "p95_s": round(pct(counted, 0.95), 2) if counted else None,
        "kinds": {k: sum(r["kind"] == k for r in single) for k in
                  sorted({r["kind"] for r in single})},
        "pair_seconds": [r["seconds"] for r in pair], "pair_kinds": [r["kind"] for r in pair],
        "eight_max_s": max(r["seconds"] for r in eight),
        "eight_kinds": {k: sum(r["kind"] == k for r in eight) for k in
                        sorted({r["kind"] for r in eight})},
        "eight_all_replied": all(r["kind"] not in ("none", "error") for r in eight),
    }
    out = ROOT / "results" / "llm_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "single": single, "pair": pair,
                               "eight": eight}, indent=1))
    print(json.dumps(summary, indent=1))
    if not args.no_doc:
        s = summary
        update_doc("bench", "\n".join([
            f"Run {s['date']} on this machine ({s['cpus']} cores, shared: 1-min load average "
            f"{s['load_avg_1min_before']} before, {s['load_avg_1min_after']} after), "
            "`make bench-llm`:",
            "",
            "| quantity | value |", "|---|---|",
            f"| memory bandwidth, read-only, one thread per core (numpy max of 1 GiB), best of 5 "
            f"| {s['read_bandwidth_gb_s']} GB/s |",
            f"| memory bandwidth, one-thread copy of 256 MiB (read+write), best / median of 10 | "
            f"{s['bandwidth_gb_s']} / {s['bandwidth_median_gb_s']} GB/s |",
            f"| bytes read per decoded token (the Q4_K_M GGUF) | {s['gguf_mb']} MB |",
            f"| bandwidth bound (read-only / copy bandwidth) | {s['bound_tokens_s']} / "
            f"{s['bound_tokens_s_copy_bw']} tokens/s |",
            f"| measured decode | **{s['decode_tokens_s']} tokens/s** |",
            f"| measured prefill ({s['prefill_prompt_tokens']}-token prompt, no cached prefix) "
            f"| {s['prefill_tokens_s']} tokens/s |",
            f"| LLM service RSS, idle / after the run | {s['rss_mib_idle']} / "
            f"{s['rss_mib_after']} MiB |",
            f"| fallback turn over REST, 1 shopper: p50 / p95 ({s['fallback_turns']} of "
            f"{s['turns']} turns reached the fallback) | **{s['p50_s']} s / {s['p95_s']} s** "
            "(targets 2 s / 4 s) |",
            f"| reply kinds, 1 shopper | {s['kinds']} |",
            f"| 2 shoppers at once: seconds, kinds | {s['pair_seconds']}, {s['pair_kinds']} |",
            f"| 8 shoppers at once: slowest reply, kinds | {s['eight_max_s']} s, "
            f"{s['eight_kinds']} (target: all within 20 s) |",
        ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
