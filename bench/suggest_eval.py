"""Offline evaluation of the product suggestions (issue 21): leave-one-out over the seed orders.

    .venv/bin/python -m bench.suggest_eval [--seeds 5] [--timing-calls 200]

Protocol (shop/data/db.json only; an order's items count as bought unless it was cancelled):

- every shopper who bought >= 2 distinct products takes part; each of their purchased products
  is hidden in turn (all its units), the ranking sees the rest of their history, and the hidden
  product should be among the top 5 of the products they don't have (``rank_products`` leaves
  owned products out; a product counts once, with its best available variant);
- hit@5 (hidden product in the top 5) and NDCG@5 (one relevant product: 1/log2(1+rank)) are
  averaged per shopper, then over shoppers, so each shopper weighs the same; equal scores count
  in random order (the expectation over their orders: popularity has many ties right at the
  5th place, and a fixed tie-break, by price or by id, moves its hit@5 by +-0.02);
- popularity = units bought per product over every shopper's history, minus the hidden units
  (the shopper's own hidden purchase never helps to find it);
- the shoppers are split in two halves (fixed shuffle): the blend's popularity weight is chosen
  on the first half (best NDCG@5 over a grid) and every method is reported on the second half;
  the "all" columns are in-sample for the blend;
- random: a fixed-seed shuffle of the same candidates, averaged over ``--seeds`` seeds;
- timing: ``rank_products`` (history only; a question with words left to embed, its vector
  embedded anew in each call; a question of constraints only) and ``closest_variants`` on the
  seed catalog after warm-up, p50/p95 over ``--timing-calls`` calls each.

Prints one table of quality numbers and the timing lines (both copied to docs/suggestions.md).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actions.shop_records import Item, Order, Product  # noqa: E402
from actions.suggestions import (  # noqa: E402
    UNPROMPTED,
    Weights,
    closest_variants,
    default_vectors,
    parse_query,
    purchased_items,
    rank_products,
    warm_up,
)

SEED_DB = ROOT / "shop" / "data" / "db.json"
K = 5
SPLIT_SEED = 21
GRID = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0)
# Questions with words left to embed (one MiniLM sentence per call), and questions made of
# constraints and a compared item only (nothing to embed); {item} is one of the shopper's.
WORDY_QUESTIONS = (
    "what would you recommend for a rainy {n}-day hike?", "a gift for a dad who loves fishing",
    "recommend something for coffee lovers, {n} cups a day", "something for the home office",
    "anything for camping with {n} kids?", "what do you have for a long flight",
    "ideas for a beach holiday, budget {n}00", "something to keep me warm in winter",
)
CONSTRAINT_QUESTIONS = (
    "anything like my {item} but cheaper?", "something waterproof in black under ${n}0",
    "what goes well with my {item}?", "in black or blue, between {n}0 and {n}00 dollars",
)


class Case:
    """One hidden product of one shopper."""

    __slots__ = ("user", "hidden", "rest", "popularity")

    def __init__(self, user: str, hidden: str, rest: List[Item],
                 popularity: Dict[str, float]) -> None:
        self.user, self.hidden, self.rest, self.popularity = user, hidden, rest, popularity


def load() -> Tuple[List[Product], Dict[str, List[Item]]]:
    db = json.loads(SEED_DB.read_text(encoding="utf-8"))
    catalog = [Product.parse(p) for p in db["products"].values()]
    bought: Dict[str, List[Item]] = defaultdict(list)
    for raw in db["orders"].values():
        order = Order.parse(raw)
        bought[order.user_id].extend(purchased_items([order]))
    return catalog, dict(bought)


def make_cases(bought: Mapping[str, List[Item]]) -> Dict[str, List[Case]]:
    units = Counter(i.product_id for items in bought.values() for i in items)
    cases: Dict[str, List[Case]] = {}
    for user in sorted(bought):
        products = list(dict.fromkeys(i.product_id for i in bought[user]))
        if len(products) < 2:
            continue
        cases[user] = []
        for hidden in products:
            rest = [i for i in bought[user] if i.product_id != hidden]
            popularity = {p: float(n) for p, n in units.items()}
            popularity[hidden] -= sum(1 for i in bought[user] if i.product_id == hidden)
            cases[user].append(Case(user, hidden, rest, popularity))
    return cases


Ranked = List[Tuple[str, float]]  # every candidate product id with its score, best first


def metrics(ranked: Ranked, hidden: str) -> Tuple[float, float]:
    """hit@5 and NDCG@5 of the hidden product, expected over the orders of equal scores (ties
    in random order: popularity ties a lot, and a fixed tie-break would decide the top 5)."""
    score = dict(ranked)[hidden]
    above = sum(1 for _, s in ranked if round(s, 6) > round(score, 6))
    tied = sum(1 for _, s in ranked if round(s, 6) == round(score, 6))  # with the hidden one
    ranks = range(above + 1, above + tied + 1)
    hit = sum(1 for r in ranks if r <= K) / tied
    ndcg = sum(1 / math.log2(r + 1) for r in ranks if r <= K) / tied
    return hit, ndcg


def per_user(cases: Mapping[str, List[Case]], users: Sequence[str],
             rank: Callable[[Case], Ranked]) -> List[Tuple[float, float]]:
    """Each shopper's mean hit@5 and NDCG@5 over their hidden products."""
    out = []
    for user in users:
        scores = [metrics(rank(case), case.hidden) for case in cases[user]]
        out.append((sum(s[0] for s in scores) / len(scores),
                    sum(s[1] for s in scores) / len(scores)))
    return out


def averaged(cases: Mapping[str, List[Case]], users: Sequence[str],
             rank: Callable[[Case], Ranked]) -> Tuple[float, float]:
    """hit@5 and NDCG@5, mean per shopper, then over shoppers."""
    rows = per_user(cases, users, rank)
    return sum(r[0] for r in rows) / len(rows), sum(r[1] for r in rows) / len(rows)


def mean_se(values: Sequence[float]) -> Tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
    return mean, math.sqrt(var / len(values))


def co_purchase(bought: Mapping[str, List[Item]], lift: bool) -> Callable[[Case], Ranked]:
    """Item-to-item baseline: how often other shoppers bought each candidate with the products
    of the history (the shopper's own basket taken out); ``lift`` divides by popularity."""
    baskets = {u: set(i.product_id for i in items) for u, items in bought.items()}
    pairs: Counter = Counter()
    for basket in baskets.values():
        pairs.update((a, b) for a in basket for b in basket if a != b)

    def rank(case: Case) -> Ranked:
        rest = {i.product_id for i in case.rest}
        out = []
        for product in sorted(set(case.popularity) - rest):
            together = sum(pairs[(product, r)] - (product == case.hidden) for r in rest)
            out.append((product, together / max(1.0, case.popularity[product]) if lift
                        else float(together)))
        return out
    return rank


def ranking(catalog: Sequence[Product], weights: Weights) -> Callable[[Case], Ranked]:
    """What ``rank_products`` ranks for a case with these weights: every candidate, scored."""
    def rank(case: Case) -> Ranked:
        return [(s.product.product_id, s.score) for s in rank_products(
            catalog, case.rest, k=len(catalog), popularity=case.popularity, weights=weights)]
    return rank


class Scored:
    """Each case's candidates with their best-variant similarity and popularity, computed once
    (one ``rank_products`` call): a blend's order is then arithmetic, for the weight grid.
    Popularity is per product, so the best variant of a product is the same for every blend."""

    def __init__(self, catalog: Sequence[Product], cases: Mapping[str, List[Case]]) -> None:
        self.rows: Dict[Tuple[str, str], List[Tuple[str, float, float, float, str, str]]] = {}
        everything = len(catalog)
        for user, user_cases in cases.items():
            for case in user_cases:
                out = rank_products(catalog, case.rest, k=everything,
                                    popularity=case.popularity,
                                    weights=Weights(history=1.0, query=0.0, popularity=0.0))
                top = max(case.popularity.values())
                self.rows[(user, case.hidden)] = [
                    (s.product.product_id, s.similarity, case.popularity.get(
                        s.product.product_id, 0.0) / top, s.variant.price, s.product.name,
                     s.variant.item_id) for s in out]

    def blend(self, popularity_weight: float) -> Callable[[Case], Ranked]:
        def rank(case: Case) -> Ranked:
            rows = self.rows[(case.user, case.hidden)]
            return [(r[0], r[1] + popularity_weight * r[2]) for r in rows]
        return rank

    def shuffled(self, seed: int) -> Callable[[Case], Ranked]:
        rng = random.Random(seed)

        def rank(case: Case) -> Ranked:
            ids = sorted(r[0] for r in self.rows[(case.user, case.hidden)])
            rng.shuffle(ids)
            return [(p, float(len(ids) - i)) for i, p in enumerate(ids)]
        return rank


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def timing(catalog: Sequence[Product], bought: Mapping[str, List[Item]],
           popularity: Mapping[str, float], calls: int) -> List[Tuple[str, float, float]]:
    users = [u for u in sorted(bought) if len({i.product_id for i in bought[u]}) >= 2]
    vectors = default_vectors()
    by_name = {p.name: p for p in catalog}
    results = []

    def run(label: str, one: Callable[[int], object]) -> None:
        for i in range(20):  # warm-up
            one(i)
        times = []
        for i in range(calls):
            vectors.clear_queries()
            start = time.perf_counter()
            one(i)
            times.append((time.perf_counter() - start) * 1000)
        results.append((label, percentile(times, 50), percentile(times, 95)))

    run("rank_products, history only (after a finished flow)", lambda i: rank_products(
        catalog, bought[users[i % len(users)]], popularity=popularity, weights=UNPROMPTED))

    def asking(questions: Sequence[str], embeds: bool) -> Callable[[int], object]:
        def one(i: int) -> object:
            history = bought[users[i % len(users)]]
            text = questions[i % len(questions)].format(
                item=history[i % len(history)].name.lower(), n=i % 9 + 1)
            assert bool(parse_query(text, catalog, history).text) == embeds, text
            return rank_products(catalog, history, text, popularity=popularity)
        return one
    run("rank_products, a question with words to embed (one MiniLM sentence)",
        asking(WORDY_QUESTIONS, True))
    run("rank_products, a question of constraints only (nothing to embed)",
        asking(CONSTRAINT_QUESTIONS, False))

    def exchange(i: int) -> object:
        history = bought[users[i % len(users)]]
        item = history[i % len(history)]
        product = by_name[item.name]
        other = product.variants[i % len(product.variants)]
        return closest_variants(product, dict(other.options), item)
    run("closest_variants", exchange)
    return results


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="random baseline runs")
    parser.add_argument("--timing-calls", type=int, default=200)
    args = parser.parse_args(list(argv))

    catalog, bought = load()
    start = time.perf_counter()
    warm_up(catalog)
    embed_s = time.perf_counter() - start
    cases = make_cases(bought)
    users = sorted(cases)
    shuffled = users[:]
    random.Random(SPLIT_SEED).shuffle(shuffled)
    tune, test = sorted(shuffled[: len(users) // 2]), sorted(shuffled[len(users) // 2:])
    n_cases = sum(len(c) for c in cases.values())

    scored = Scored(catalog, cases)
    grid = {w: averaged(cases, tune, scored.blend(w)) for w in GRID}
    best = max(GRID, key=lambda w: (round(grid[w][1], 6), -w))
    blend = Weights(history=1.0, query=0.0, popularity=best)

    def both(rank: Callable[[Case], Ranked]) -> Tuple[float, ...]:
        return averaged(cases, test, rank) + averaged(cases, users, rank)

    rows: List[Tuple[str, Tuple[float, ...]]] = []
    runs = [both(scored.shuffled(seed)) for seed in range(args.seeds)]
    rows.append((f"random (mean of {args.seeds} seeds)",
                 tuple(sum(r[i] for r in runs) / len(runs) for i in range(4))))
    popular = ranking(catalog, Weights(history=0.0, query=0.0, popularity=1.0))
    similar = ranking(catalog, Weights(history=1.0, query=0.0, popularity=0.0))
    blended = ranking(catalog, blend)
    rows.append(("popularity (most-bought products)", both(popular)))
    rows.append(("co-purchase counts (item-to-item, reference)",
                 both(co_purchase(bought, lift=False))))
    rows.append(("co-purchase lift (counts / popularity, reference)",
                 both(co_purchase(bought, lift=True))))
    rows.append(("MiniLM similarity to the history", both(similar)))
    rows.append((f"blend: similarity + {best:g} x popularity", both(blended)))

    print(f"Leave-one-out over the seed orders: {len(users)} shoppers with >= 2 products, "
          f"{n_cases} hidden products; test half {len(test)} shoppers, tuning half {len(tune)}; "
          f"{len(catalog)} products, {sum(len(p.variants) for p in catalog)} variants embedded "
          f"in {embed_s:.1f} s")
    print()
    print(f"| ranking | hit@5 (test half) | NDCG@5 (test half) | hit@5 (all {len(users)}) "
          "| NDCG@5 (all) |")
    print("|---|---|---|---|---|")
    for name, values in rows:
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    print()
    print("Blend weight on the tuning half (NDCG@5): " + ", ".join(
        f"{w:g}: {grid[w][1]:.3f}" for w in GRID) + f" -> {best:g}")

    def expected_random(group: Sequence[str]) -> float:
        return sum(sum(K / len(scored.rows[(c.user, c.hidden)]) for c in cases[u])
                   / len(cases[u]) for u in group) / len(group)
    print(f"Expected hit@5 of a random order (5 / candidates): {expected_random(test):.3f} "
          f"(test half), {expected_random(users):.3f} (all)")
    chance = [(sum(K / len(scored.rows[(c.user, c.hidden)]) for c in cases[u]) / len(cases[u]),
               None) for u in test]
    pairs = (("blend - popularity", per_user(cases, test, blended),
              per_user(cases, test, popular)),
             ("similarity - random order", per_user(cases, test, similar), chance))
    for label, x, y in pairs:
        parts = []
        for i, metric in ((0, "hit@5"), (1, "NDCG@5")):
            if y[0][i] is None:
                continue
            mean, se = mean_se([p[i] - q[i] for p, q in zip(x, y, strict=True)])
            parts.append(f"{metric} {mean:+.3f} +- {se:.3f}")
        print(f"Paired per shopper (test half), {label}: {', '.join(parts)} "
              "(mean +- standard error)")
    print()
    units = Counter()
    for items in bought.values():
        units.update(i.product_id for i in items)
    popularity = {p: float(n) for p, n in units.items()}
    print(f"Timing ({args.timing_calls} calls after 20 warm-up calls, ms):")
    for label, p50, p95 in timing(catalog, bought, popularity, args.timing_calls):
        print(f"  {label}: p50 {p50:.1f}, p95 {p95:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
