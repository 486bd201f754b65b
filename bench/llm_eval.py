"""Evaluate the grounded fallback on free-form shopper questions against the real local LLM.

    .venv/bin/python bench/llm_eval.py            # starts the local LLM service on a free port
    .venv/bin/python bench/llm_eval.py --url http://localhost:8081/v1   # use a running server

Reports % correct (the reply contains the expected fact) and % unsupported claims (the reply
states a number absent from the knowledge/facts, or a known-wrong policy), writes
results/llm_eval.json and the summary into docs/llm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions.grounding import format_reply, grounded_answer  # noqa: E402
from actions.knowledge import default_retriever, load_passages  # noqa: E402
from actions.llm_client import LLMClient, LLMConfig  # noqa: E402
from tests.support import free_port, start_service, stop  # noqa: E402

DOC = ROOT / "docs" / "llm.md"


@contextmanager
def llm_service(url: Optional[str]) -> Iterator[str]:
    """Yield a base URL: the given one, or a local service started (and stopped) here."""
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    env = dict(os.environ, LLM_PORT=str(port), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = start_service("llm", env, ROOT / "var" / "llm_bench_service.log", str(port), 180)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


def as_list(x: object) -> list[str]:
    if x is None:
        return []
    return [str(v) for v in x] if isinstance(x, list) else [str(x)]


def numbers(text: str) -> set[str]:
    return {n.rstrip(".,").replace(",", "") for n in re.findall(r"\d[\d,.]*", text)}


def update_doc(marker: str, body: str) -> None:
    """Replace the text between <!-- marker:start --> and <!-- marker:end --> in docs/llm.md."""
    text = DOC.read_text() if DOC.exists() else ""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=None, help="OpenAI-compatible base URL (…/v1)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/llm.md")
    args = parser.parse_args()
    cases = yaml.safe_load((ROOT / "bench" / "llm_eval_set.yml").read_text())
    if args.limit:
        cases = cases[: args.limit]
    kb_numbers = numbers(" ".join(p.text for p in load_passages()))
    retriever = default_retriever()
    retriever.warm_up()
    rows = []
    with llm_service(args.url) as base:
        cfg = LLMConfig.from_env()
        cfg.base_url = base
        client = LLMClient(cfg)
        for case in cases:
            facts = case.get("facts")
            ans = grounded_answer(case["q"], facts, retriever=retriever, client=client)
            reply = format_reply(ans)
            low = reply.lower()
            correct = any(f.lower() in low for f in as_list(case["fact"]))
            if case.get("kind"):
                correct = correct and ans.kind == case["kind"]
            wrong = [n for n in as_list(case.get("not")) if n.lower() in low]
            stray = sorted(numbers(reply) - kb_numbers - numbers(facts or "") - numbers(case["q"]))
            raw = ans.llm_text or ""
            rows.append({
                "q": case["q"], "kind": ans.kind, "correct": correct,
                "unsupported": bool(wrong or stray), "wrong": wrong, "stray_numbers": stray,
                "raw_llm": raw, "raw_has_fact": any(f.lower() in raw.lower()
                                                    for f in as_list(case["fact"])),
                "reason": ans.reason, "error": ans.error, "seconds": round(ans.seconds, 2),
                "reply": reply,
            })
            mark = "ok " if correct else "BAD"
            print(f"{mark} {ans.kind:9s} {ans.seconds:5.2f}s  {case['q'][:60]}", flush=True)
    n = len(rows)
    pct = lambda k: 100.0 * sum(1 for r in rows if r[k]) / n  # noqa: E731
    kinds = {k: sum(1 for r in rows if r["kind"] == k) for k in
             ("answered", "passage", "offtopic", "error")}
    llm_rows = [r for r in rows if r["raw_llm"]]
    raw_fact = 100.0 * sum(r["raw_has_fact"] for r in llm_rows) / max(1, len(llm_rows))
    rejected = 100.0 * sum(r["kind"] == "passage" for r in llm_rows) / max(1, len(llm_rows))
    secs = sorted(r["seconds"] for r in rows)
    summary = {
        "questions": n, "correct_pct": round(pct("correct"), 1),
        "unsupported_pct": round(pct("unsupported"), 1), "kinds": kinds,
        "answered_pct": round(100.0 * kinds["answered"] / n, 1),
        "raw_llm_has_fact_pct": round(raw_fact, 1), "raw_llm_rejected_pct": round(rejected, 1),
        "median_seconds": secs[n // 2], "model": LLMConfig.from_env().model,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    out = ROOT / "results" / "llm_eval.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(json.dumps(summary, indent=1))
    if not args.no_doc:
        bad = [r for r in rows if not r["correct"] or r["unsupported"]]
        lines = [
            f"Run {summary['date']}, `{summary['model']}` on this machine, "
            f"{n} questions (`bench/llm_eval_set.yml`):",
            "",
            "| metric | value |", "|---|---|",
            f"| answered: the model's own checked answer | **{summary['answered_pct']}%** "
            "(target >= 80 %) |",
            f"| correct (reply contains the expected fact) | **{summary['correct_pct']}%** "
            "(target >= 95 %) |",
            f"| unsupported claims in replies | **{summary['unsupported_pct']}%** (target 0) |",
            f"| replies by kind | answered {kinds['answered']}, passage {kinds['passage']}, "
            f"offtopic {kinds['offtopic']}, error {kinds['error']} |",
            "| raw LLM text containing the fact (before checks) | "
            f"{summary['raw_llm_has_fact_pct']}% |",
            f"| raw LLM answers rejected by the checks (passage shown) | "
            f"{summary['raw_llm_rejected_pct']}% |",
            f"| median time of `grounded_answer` (retrieval, LLM, checks) | "
            f"{summary['median_seconds']} s |",
            "",
            "Misses: " + ("none" if not bad else "; ".join(
                f"\"{r['q']}\" ({r['kind']}{', unsupported' if r['unsupported'] else ''})"
                for r in bad)),
            "",
            "Every LLM answer that passed the checks (for a human read):",
            "",
        ] + ([f"- \"{r['q']}\" → \"{r['reply']}\"" for r in rows if r["kind"] == "answered"]
             or ["- (none in this run)"])
        update_doc("eval", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
