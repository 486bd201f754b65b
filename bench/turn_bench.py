"""Per-turn latency of the assistant, by kind of turn, against two alternatives, in one run.

    .venv/bin/python bench/turn_bench.py [--reuse DIR] [--docs docs/benchmarks.md]

1. Trains two models into a temp dir (never models/), each with a fresh Rasa cache, timing
   `rasa train` wall time: (A) config.yml as is, (B) the same pipeline without the transformer
   featurizer (config generated from config.yml).
2. Starts the real stack (shop, the real LLM service, action server, Rasa with model A) and
   measures the latency seen on the REST channel of: NLU-only turns (greet, FAQ), turns with a
   shop call (order status and tracking after identification), LLM turns (free questions that
   go to the grounded fallback, answered by the local LLM service); then restarts Rasa with
   model B and measures the same turns.
3. Baseline "the LLM answers every turn": the same texts sent straight to the LLM service's
   /v1/chat/completions (no Rasa, no shop, no retrieval).
4. Memory: RSS of each process (with its children), from /proc.
Writes results/bench/turn_bench.json, docs/images/bench_turns.png and its section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "load"))

from run_load import loadavg, replace_section, tree_rss_mib  # noqa: E402

from tests.conversations.harness import Stack, remove_stack, start_stack  # noqa: E402

# every simulated shopper comes from 127.0.0.1: the per-client rate limits would refuse the
# load (addons/rate_limits.py); the harness turns them off too, this says it where it matters
NO_RATE_LIMITS = {"rasa": {"RATE_LIMITS": "off"}}

RASA = ROOT / ".venv" / "bin" / "rasa"
DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "images" / "bench_turns.png"
MEI_EMAIL = "mei.martin4637@example.com"

NLU_TURNS = ["hello", "how long does a refund take?", "hi there", "what is your return policy?",
             "which payment methods do you accept?", "good morning"]
SHOP_TURNS = ["what is the status of order #W7017301", "track order #W3288665",
              "what is the status of order #W5564375", "status of #W3288665"]
LLM_TURNS = ["what is the warranty on electronics?", "how do I reset my password?",
             "who are you owned by?"]
KINDS = {"nlu": "NLU-only turn (greet, FAQ)", "shop": "turn with a shop call (order status, "
         "tracking)", "llm": "LLM turn (grounded fallback answer)"}
SYSTEM = ("You are the customer-service assistant of an online shop. Answer the shopper's "
          "message briefly.")


# ---------------------------------------------------------------- training
def variant_config(tmp: Path) -> Path:
    """config.yml without the transformer featurizer (everything else the same)."""
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    config["pipeline"] = [c for c in config["pipeline"]
                          if "LanguageModelFeaturizer" not in c["name"]]
    path = tmp / "config_no_transformer.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train(config: Path, out: Path, name: str) -> tuple[Path, float]:
    """`rasa train` into ``out`` with a fresh cache; returns (model file, wall seconds)."""
    env = {**os.environ, "RASA_CACHE_DIRECTORY": str(out / "cache"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    with open(out / f"train_{name}.log", "wb") as log:
        subprocess.run([str(RASA), "train", "--config", str(config), "--domain", "domain.yml",
                        "--data", "data", "--out", str(out), "--fixed-model-name", name],
                       cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    seconds = time.monotonic() - started
    shutil.rmtree(out / "cache", ignore_errors=True)
    return out / f"{name}.tar.gz", seconds


# ---------------------------------------------------------------- measuring
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": round(pct(values, 0.5), 3),
            "p95": round(pct(values, 0.95), 3), "mean": round(statistics.mean(values), 3)}


def say(stack: Stack, sender: str, text: str) -> tuple[float, list]:
    started = time.monotonic()
    response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook",
                             json={"sender": sender, "message": text}, timeout=120)
    response.raise_for_status()
    return time.monotonic() - started, response.json()


def measure_turns(stack: Stack, tag: str, rounds: dict[str, int]) -> dict[str, list[float]]:
    """Latency of each kind of turn; a fresh conversation every few turns, warm-up excluded."""
    out: dict[str, list[float]] = {k: [] for k in KINDS}
    for i in range(3):  # warm-up: first calls load lazily (TF graphs, retriever, pools)
        say(stack, f"warm-{tag}-{i}", NLU_TURNS[i])
        say(stack, f"warm-{tag}-{i}", LLM_TURNS[i])
    sender = ""
    for i in range(rounds["nlu"]):
        if i % 6 == 0:
            sender = f"bench-{tag}-nlu-{i}"
        out["nlu"].append(say(stack, sender, NLU_TURNS[i % len(NLU_TURNS)])[0])
    for i in range(rounds["shop"]):
        if i % 8 == 0:
            sender = f"bench-{tag}-shop-{i}"
            say(stack, sender, "where is my order?")
            say(stack, sender, MEI_EMAIL)
        seconds, replies = say(stack, sender, SHOP_TURNS[i % len(SHOP_TURNS)])
        assert "#W" in json.dumps(replies), replies  # a real order answer, not a refusal
        out["shop"].append(seconds)
    for i in range(rounds["llm"]):
        sender = f"bench-{tag}-llm-{i}"
        out["llm"].append(say(stack, sender, LLM_TURNS[i % len(LLM_TURNS)])[0])
    return out


def llm_every_turn(stack: Stack, rounds: dict[str, int]) -> dict[str, list[float]]:
    """Baseline: every turn's text straight to the LLM service (max_tokens as the fallback)."""
    url = f"{stack.llm_url}/chat/completions"
    max_tokens = int(os.environ.get("LLM_MAX_TOKENS") or 80)
    texts = {"nlu": NLU_TURNS, "shop": SHOP_TURNS, "llm": LLM_TURNS}
    out: dict[str, list[float]] = {k: [] for k in KINDS}
    requests.post(url, json={"max_tokens": 8,
                             "messages": [{"role": "user", "content": "hi"}]}, timeout=120)
    for kind, n in rounds.items():
        for i in range(n):
            started = time.monotonic()
            response = requests.post(url, timeout=120, json={
                "max_tokens": max_tokens, "temperature": 0,
                "messages": [{"role": "system", "content": SYSTEM},
                             {"role": "user", "content": texts[kind][i % len(texts[kind])]}]})
            response.raise_for_status()
            out[kind].append(time.monotonic() - started)
    return out


def rss(stack: Stack) -> dict[str, float]:
    return {name: round(tree_rss_mib(proc.popen.pid), 1) for name, proc in stack.processes.items()
            if proc.popen.poll() is None}


# ---------------------------------------------------------------- report
def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [("full", "full pipeline (transformer featurizer)"),
                ("no_transformer", "without the transformer featurizer"),
                ("llm_every_turn", "baseline: LLM answers every turn")]
    kinds = list(KINDS)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8),
                                  gridspec_kw={"width_ratios": [2.2, 1]})
    width = 0.27
    for j, (key, label) in enumerate(variants):
        p50 = [results["latency"][key][k]["p50"] * 1000 for k in kinds]
        p95 = [results["latency"][key][k]["p95"] * 1000 for k in kinds]
        xs = [i + (j - 1) * width for i in range(len(kinds))]
        bars = ax.bar(xs, p50, width, label=f"{label} (p50; line = p95)")
        ax.scatter(xs, p95, marker="_", s=400, color=bars.patches[0].get_facecolor(),
                   edgecolor="black", zorder=3)
    ax.set_xticks(range(len(kinds)))
    ax.set_xticklabels(["NLU-only\n(greet, FAQ)", "shop call\n(order status)",
                        "LLM turn\n(fallback)"])
    ax.set_ylabel("latency per turn, ms (log)")
    ax.set_yscale("log")
    ax.set_title("Per-turn latency, p50 bars, p95 marks")
    ax.legend(fontsize=8, loc="upper left")
    names = list(results["rss_mib"]["full"])
    ax2.barh(names, [results["rss_mib"]["full"][n] for n in names], color="tab:gray")
    ax2.set_xlabel("RSS, MiB (process + children)")
    ax2.set_title("Memory of each process")
    fig.suptitle(f"{results['when']} UTC, load average {results['load_before']} "
                 f"(2 shared cores)", fontsize=9)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def section(results: dict) -> str:
    lat = results["latency"]
    names = {"full": "full pipeline (config.yml)", "no_transformer": "(a) without the "
             "transformer featurizer", "llm_every_turn": "(b) LLM answers every turn"}
    lines = [
        "## Per-turn latency, memory, training time",
        "",
        f"`make bench-turns` (bench/turn_bench.py), run {results['when']} UTC on this 2-core "
        f"machine shared with other jobs: load average {results['load_before']} before, "
        f"{results['load_after']} after. Latency is what a shopper waits on the REST channel, "
        "one turn at a time (no concurrency), warm-up turns excluded; the real shop, action "
        "server and local LLM service (Qwen2.5-Coder-1.5B-Instruct on llama.cpp) run alongside.",
        "",
        "![Per-turn latency p50/p95 and memory per process](images/bench_turns.png)",
        "",
        "| turn kind | " + " | ".join(names[v] for v in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for kind, label in KINDS.items():
        cells = [f"{lat[v][kind]['p50'] * 1000:.0f} / {lat[v][kind]['p95'] * 1000:.0f} ms "
                 f"(n={lat[v][kind]['n']})" for v in names]
        lines.append(f"| {label}: p50 / p95 | " + " | ".join(cells) + " |")
    train = results["train_seconds"]
    rss_full, rss_b = results["rss_mib"]["full"], results["rss_mib"]["no_transformer"]
    lines += [
        "",
        "- The baseline (b) sends each turn's text straight to the LLM service's "
        "`/v1/chat/completions` (system prompt + the message, max_tokens as the fallback uses): "
        "it cannot look up an order, identify a shopper or follow the store's rules; it is "
        "there to price \"let the LLM answer everything\".",
        f"- **Training time** (`rasa train`, wall, fresh cache): full pipeline "
        f"**{train['full']:.0f} s**, without the transformer featurizer "
        f"**{train['no_transformer']:.0f} s**.",
        "- **Memory (RSS, process + children)**, full pipeline: " + ", ".join(
            f"{n} {v:.0f} MiB" for n, v in rss_full.items())
        + f"; Rasa with the model without the transformer featurizer: {rss_b.get('rasa', 0):.0f}"
          " MiB.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", type=Path, help="a dir with full.tar.gz and "
                        "no_transformer.tar.gz (and train_seconds.json) from an earlier run")
    parser.add_argument("--nlu", type=int, default=36)
    parser.add_argument("--shop", type=int, default=24)
    parser.add_argument("--llm", type=int, default=12)
    parser.add_argument("--docs", type=Path, default=DOCS, help="'' to skip writing docs")
    args = parser.parse_args()
    rounds = {"nlu": args.nlu, "shop": args.shop, "llm": args.llm}
    load_before = loadavg()
    work = args.reuse or Path(tempfile.mkdtemp(prefix="turn-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    seconds_file = work / "train_seconds.json"
    if args.reuse and seconds_file.exists():
        train_seconds = json.loads(seconds_file.read_text())
        models = {k: work / f"{k}.tar.gz" for k in train_seconds}
    else:
        models, train_seconds = {}, {}
        for name, config in (("full", ROOT / "config.yml"),
                             ("no_transformer", variant_config(work))):
            print(f"training {name} ...", flush=True)
            models[name], train_seconds[name] = train(config, work, name)
            print(f"  {train_seconds[name]:.0f} s", flush=True)
        seconds_file.write_text(json.dumps(train_seconds))
    results: dict = {"when": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}",
                     "load_before": load_before, "train_seconds": train_seconds,
                     "latency": {}, "rss_mib": {}}
    stack = start_stack(with_llm=True, model=models["full"], overrides=NO_RATE_LIMITS)
    try:
        print("measuring the full pipeline ...", flush=True)
        results["latency"]["full"] = measure_turns(stack, "full", rounds)
        results["rss_mib"]["full"] = rss(stack)
        print("measuring without the transformer featurizer ...", flush=True)
        stack.model = models["no_transformer"]
        stack.restart("rasa")
        results["latency"]["no_transformer"] = measure_turns(stack, "b", rounds)
        results["rss_mib"]["no_transformer"] = rss(stack)
        print("measuring the LLM-every-turn baseline ...", flush=True)
        results["latency"]["llm_every_turn"] = llm_every_turn(stack, rounds)
    finally:
        remove_stack(stack)
    results["load_after"] = loadavg()
    raw = results["latency"]
    results["latency"] = {v: {k: summary(vals) for k, vals in kinds.items()}
                          for v, kinds in raw.items()}
    out = ROOT / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "turn_bench.json").write_text(json.dumps({**results, "raw": raw}, indent=1))
    print(json.dumps(results, indent=1))
    plot(results)
    body = section(results)
    print(body)
    if str(args.docs):
        replace_section(args.docs, "turn-bench", body)
    if not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
