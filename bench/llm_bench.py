"""Latency of the LLM fallback and decode speed vs the memory-bandwidth bound.

    .venv/bin/python bench/llm_bench.py [--url http://localhost:8081/v1] [--turns 20]

1. Memory bandwidth: numpy copy of a 256 MiB array (reads + writes 512 MiB per copy), best of 5.
2. Decode tokens/s of the service: the same prompt with max_tokens=1 and max_tokens=17; the time
   difference is 16 decode steps (prefill cancels out).
3. Bound: every decode step reads all weights once, so tokens/s <= bandwidth / weight bytes.
   SmolLM2-135M fp32 (what transformers runs here): 134.5 M params x 4 B = 538 MB per token.
4. Whole fallback turns (`grounded_answer`: embed, retrieve, LLM, checks) on eval questions:
   p50 / p95 seconds. Target p95 <= 4 s.
Writes results/llm_bench.json and the summary into docs/llm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from llm_eval import llm_service, update_doc  # noqa: E402

from actions.knowledge import default_retriever  # noqa: E402
from actions.llm import LLMClient, LLMConfig, grounded_answer  # noqa: E402

PARAMS = 134_515_008  # SmolLM2-135M (tied embeddings), from the converted safetensors
GGUF_Q4_1_BYTES = 98_362_432  # the packaged Q4_1 file: what llama.cpp would read per token


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


def decode_rate(base: str, model: str, repeats: int = 2) -> tuple[float, float]:
    """(decode tokens/s, prefill seconds for the ~60-token prompt)."""
    msgs = [{"role": "user", "content": "Write a long story about a cat who runs a shop."}]

    def run(n: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = requests.post(f"{base}/chat/completions", timeout=120, json={
            "model": model, "messages": msgs, "max_tokens": n, "temperature": 0})
        r.raise_for_status()
        return time.perf_counter() - t0, r.json()["usage"]["completion_tokens"]

    run(1)  # warm-up
    rates, prefills = [], []
    for _ in range(repeats):
        t1, _ = run(1)
        t17, n17 = run(17)  # short: the service's 3.5 s time budget must not cut it
        rates.append((n17 - 1) / max(t17 - t1, 1e-6))
        prefills.append(t1)
    return statistics.median(rates), statistics.median(prefills)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=None)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    bw, bw_median = bandwidth_gbs()
    questions = [c["q"] for c in yaml.safe_load((ROOT / "bench" / "llm_eval_set.yml").read_text())
                 if c.get("kind") != "offtopic"][: args.turns]
    retriever = default_retriever()
    retriever.warm_up()
    cfg = LLMConfig.from_env()
    with llm_service(args.url) as base:
        cfg.base_url = base
        client = LLMClient(cfg)
        rate, prefill = decode_rate(base, cfg.model)
        times, kinds = [], []
        for q in questions:
            ans = grounded_answer(q, retriever=retriever, client=client)
            times.append(ans.seconds)
            kinds.append(ans.kind)
            print(f"{ans.seconds:5.2f}s {ans.kind:9s} {q[:60]}", flush=True)
    times.sort()
    p50 = times[len(times) // 2]
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    fp32_mb = PARAMS * 4 / 1e6
    bound = bw * 1e9 / (PARAMS * 4)
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
        "load_avg_1min_before": round(load_before, 2),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "bandwidth_gb_s": round(bw, 1), "bandwidth_median_gb_s": round(bw_median, 1),
        "weights_mb_fp32": round(fp32_mb),
        "bound_tokens_s_fp32_median_bw": round(bw_median * 1e9 / (PARAMS * 4), 1),
        "bound_tokens_s_fp32": round(bound, 1),
        "bound_tokens_s_q4_1": round(bw * 1e9 / GGUF_Q4_1_BYTES, 1),
        "decode_tokens_s": round(rate, 1), "prefill_s_short_prompt": round(prefill, 2),
        "turns": len(times), "p50_s": round(p50, 2), "p95_s": round(p95, 2),
        "max_tokens": cfg.max_tokens, "timeout_s": cfg.timeout,
        "kinds": {k: kinds.count(k) for k in sorted(set(kinds))},
    }
    out = ROOT / "results" / "llm_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "turn_seconds": times}, indent=1))
    print(json.dumps(summary, indent=1))
    if not args.no_doc:
        s = summary
        update_doc("bench", "\n".join([
            f"Run {s['date']} on this machine ({s['cpus']} cores, shared: 1-min load average "
            f"{s['load_avg_1min_before']} before, {s['load_avg_1min_after']} after).",
            "",
            "| quantity | value |", "|---|---|",
            f"| memory bandwidth (numpy 256 MiB copy, read+write), best / median of 10 | "
            f"{s['bandwidth_gb_s']} / {s['bandwidth_median_gb_s']} GB/s |",
            f"| weight bytes per token (fp32, 134.5 M params x 4 B) | {s['weights_mb_fp32']} MB |",
            f"| bandwidth bound, fp32 (best / median bandwidth) | {s['bound_tokens_s_fp32']} / "
            f"{s['bound_tokens_s_fp32_median_bw']} tokens/s |",
            f"| bandwidth bound if run as the 98 MB Q4_1 GGUF (llama.cpp) | "
            f"{s['bound_tokens_s_q4_1']} tokens/s |",
            f"| measured decode | **{s['decode_tokens_s']} tokens/s** |",
            f"| prefill + HTTP, ~40-token prompt, 1 token | {s['prefill_s_short_prompt']} s |",
            f"| fallback turn p50 / p95 ({s['turns']} turns, max_tokens {s['max_tokens']}) | "
            f"**{s['p50_s']} s / {s['p95_s']} s** (target p95 <= 4 s) |",
            f"| turn outcomes | {s['kinds']} |",
        ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
