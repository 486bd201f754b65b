"""Cross-validated grid over ``C`` and ``dense_weight`` of the intent classifier.

``addons.classifiers.TfidfEmbeddingIntentClassifier`` ships with ``C=50`` and
``dense_weight=2``; this bench is the reproducible measurement behind those defaults.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python bench/nlu_intent_grid.py \\
        [--C 5,10,20,50] [--dense-weight 0,1,2,3] [--folds 5] [--seed 42]

1. Loads ``data/nlu`` and keeps the intent examples.
2. Builds every pipeline component of ``config.yml`` listed before the classifier (tokenizer,
   regex, lexical-syntactic, packaged MiniLM and count-vectors featurizers) as the real Rasa
   classes. Components that do not train (tokenizer, MiniLM) run once on all messages; the
   trainable ones (RegexFeaturizer, LexicalSyntacticFeaturizer, CountVectorsFeaturizers) are
   fit on each training fold only and then applied to its test fold, so no vocabulary leaks.
3. For each fold of StratifiedKFold(folds, shuffle=True, random_state=seed), stratified on the
   full intent like ``rasa test nlu --cross-validation`` (``faq/<topic>``), and each
   (C, dense_weight): trains the product component itself (``train`` on the fold's
   TrainingData, ``process`` on the test messages) and collects its intent ranking.
4. Prints, per grid cell, intent macro-F1 (pooled out-of-fold predictions, and its standard
   deviation over folds), accuracy, and what config.yml's FallbackClassifier would do: share
   with top confidence < threshold, share with top1-top2 margin < ambiguity_threshold, share
   sent to fallback (either rule), share of *correct* predictions sent to fallback, share of
   wrong predictions that pass the fallback; then the same as a markdown table to paste into
   docs/nlu.md. ``--baseline`` adds Rasa's own LogisticRegressionClassifier on the same folds
   and features; ``--errors N`` lists the N weakest intents and most frequent confusions (with
   example texts) of config.yml's cell: where new training examples help most.
   Writes nothing in the repository (component files go to a temp dir).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the MiniLM weights are local: never let transformers try a hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema  # noqa: E402
from rasa.engine.recipes.default_recipe import DefaultV1Recipe  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier  # noqa: E402
from rasa.nlu.classifiers.logistic_regression_classifier import (  # noqa: E402
    LogisticRegressionClassifier,
)
from rasa.nlu.constants import TOKENS_NAMES  # noqa: E402
from rasa.shared.nlu.constants import INTENT, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from addons.classifiers import TfidfEmbeddingIntentClassifier  # noqa: E402

CONFIG = ROOT / "config.yml"
NLU_DATA = ROOT / "data" / "nlu"
CLASSIFIER = TfidfEmbeddingIntentClassifier.__name__
CONTEXT = ExecutionContext(GraphSchema({}), "bench")
BASELINE_KEY = ("rasa", "baseline")
SECTION = "## Choosing C and dense_weight (bench/nlu_intent_grid.py)"


@dataclass
class Step:
    """One featurizer-part component of config.yml, as written there."""

    index: int
    name: str
    clazz: type
    config: Dict[str, Any]
    trainable: bool

    def create(self, storage: LocalModelStorage, tag: str) -> GraphComponent:
        """A fresh, untrained instance (``Component.create`` like Rasa's graph does)."""
        resource = Resource(f"{self.index}_{self.clazz.__name__}_{tag}")
        return self.clazz.create({**self.clazz.get_default_config(), **self.config},
                                 storage, resource, CONTEXT)


@dataclass
class Cell:
    """Out-of-fold predictions of one (C, dense_weight)."""

    C: float
    dense_weight: float
    truth: List[str] = field(default_factory=list)
    predicted: List[str] = field(default_factory=list)
    confidence: List[float] = field(default_factory=list)
    margin: List[float] = field(default_factory=list)
    fold_f1: List[float] = field(default_factory=list)
    seconds: float = 0.0
    # Rasa's own LogisticRegressionClassifier on the same folds (C, dense_weight unused)
    baseline: bool = False


def make_classifier(cell: Cell, classifier_config: Dict[str, Any],
                    storage: LocalModelStorage, fold: int) -> GraphComponent:
    """An untrained intent classifier for one grid cell (or the Rasa baseline)."""
    if cell.baseline:
        return LogisticRegressionClassifier.create(
            LogisticRegressionClassifier.get_default_config(), storage,
            Resource(f"intents_fold{fold}_rasa_logreg"), CONTEXT)
    return TfidfEmbeddingIntentClassifier.create(
        {**classifier_config, "C": cell.C, "dense_weight": cell.dense_weight}, storage,
        Resource(f"intents_fold{fold}_C{cell.C:g}_w{cell.dense_weight:g}"), CONTEXT)


def floats(text: str) -> List[float]:
    return [float(value) for value in text.split(",") if value.strip()]


def component_config(pipeline: Sequence[Dict[str, Any]], suffix: str) -> Dict[str, Any]:
    """Options of the first component whose name ends with ``suffix`` (``{}`` if none)."""
    for entry in pipeline:
        if str(entry["name"]).split(".")[-1] == suffix:
            return {key: value for key, value in entry.items() if key != "name"}
    return {}


def featurizer_steps(pipeline: Sequence[Dict[str, Any]]) -> List[Step]:
    """Every component listed before the intent classifier, resolved like Rasa's recipe."""
    names = [str(entry["name"]).split(".")[-1] for entry in pipeline]
    if CLASSIFIER not in names:
        raise SystemExit(f"{CONFIG.name} has no {CLASSIFIER} in its pipeline")
    steps = []
    for index, entry in enumerate(pipeline[: names.index(CLASSIFIER)]):
        registered = DefaultV1Recipe._from_registry(entry["name"])
        steps.append(Step(index, entry["name"], registered.clazz,
                          {k: v for k, v in entry.items() if k != "name"},
                          registered.is_trainable))
    return steps


def training_copy(message: Message) -> Message:
    """The message with its data and features so far; later features go to the copy only."""
    return Message(data=dict(message.data), features=list(message.features))


def test_copy(message: Message) -> Message:
    """What a user message looks like at inference: its text (tokens, features), no labels."""
    return Message(data={TEXT: message.get(TEXT), TOKENS_NAMES[TEXT]: message.get(
        TOKENS_NAMES[TEXT])}, features=[f for f in message.features if f.attribute == TEXT])


def fold_data(messages: List[Message], data: TrainingData) -> TrainingData:
    """A fold's TrainingData, carrying regexes and lookups as ``rasa test nlu`` does."""
    return TrainingData(training_examples=messages, entity_synonyms=data.entity_synonyms,
                        regex_features=data.regex_features, lookup_tables=data.lookup_tables,
                        responses=data.responses)


def ranking_summary(message: Message) -> Tuple[str, float, float]:
    """(top intent, its confidence, top1 - top2 margin) as the FallbackClassifier reads them."""
    ranking = message.get("intent_ranking") or []
    if not ranking:
        return "", 0.0, 0.0
    top = ranking[0]["confidence"]
    return ranking[0]["name"], top, top - ranking[1]["confidence"] if len(ranking) > 1 else 1.0


def run(args: argparse.Namespace) -> int:
    config = yaml.safe_load(CONFIG.read_text())
    pipeline = config["pipeline"]
    classifier_config = {**TfidfEmbeddingIntentClassifier.get_default_config(),
                         **component_config(pipeline, CLASSIFIER)}
    fallback = {**FallbackClassifier.get_default_config(),
                **component_config(pipeline, FallbackClassifier.__name__)}
    threshold, ambiguity = float(fallback["threshold"]), float(fallback["ambiguity_threshold"])
    current = (float(classifier_config["C"]), float(classifier_config["dense_weight"]))
    steps = featurizer_steps(pipeline)
    started, load_before = time.monotonic(), os.getloadavg()[0]

    data = load_data(str(NLU_DATA))
    examples = [m for m in data.intent_examples if m.get(INTENT) and m.get(TEXT)]
    labels = [str(m.get(INTENT)) for m in examples]
    strata = [str(m.get_full_intent()) for m in examples]
    print(f"{len(examples)} intent examples, {len(set(labels))} intents "
          f"({len(set(strata))} with retrieval intents) from {NLU_DATA.relative_to(ROOT)}")
    print("featurizer part of config.yml: " + ", ".join(
        f"{s.name}{' (fit per fold)' if s.trainable else ''}" for s in steps), flush=True)

    cells = {(c, w): Cell(c, w) for c in args.C for w in args.dense_weight}
    if args.baseline:
        cells[BASELINE_KEY] = Cell(float("nan"), float("nan"), baseline=True)
    with tempfile.TemporaryDirectory(prefix="nlu-intent-grid-") as tmp:
        storage = LocalModelStorage(Path(tmp))
        # non-trainable components (tokenizer, MiniLM): once, for every message
        t0 = time.monotonic()
        base = TrainingData(training_examples=[training_copy(m) for m in examples])
        for step in steps:
            if not step.trainable:
                step.create(storage, "all").process_training_data(base)
        shared_seconds = time.monotonic() - t0
        print(f"non-trainable components on all messages: {shared_seconds:.0f} s", flush=True)

        folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
        with warnings.catch_warnings():  # a faq/<topic> with fewer examples than folds
            warnings.filterwarnings("ignore", message="The least populated class")
            splits = list(folds.split(np.zeros(len(strata)), strata))
        fold_featurizing = 0.0
        texts: List[str] = []
        for fold, (train_index, test_index) in enumerate(splits):
            t0 = time.monotonic()
            train = fold_data([training_copy(base.training_examples[i]) for i in train_index],
                              data)
            test = [test_copy(base.training_examples[i]) for i in test_index]
            for step in steps:  # trainable ones, in config order, fit on this fold only
                if step.trainable:
                    component = step.create(storage, f"fold{fold}")
                    component.train(train)
                    component.process_training_data(train)
                    component.process(test)
            fold_featurizing += time.monotonic() - t0
            truth = [labels[i] for i in test_index]
            texts += [str(examples[i].get(TEXT)) for i in test_index]  # same order as cells
            for cell in cells.values():
                t0 = time.monotonic()
                classifier = make_classifier(cell, classifier_config, storage, fold)
                classifier.train(train)
                predicted = classifier.process([training_copy(m) for m in test])
                cell.seconds += time.monotonic() - t0
                summaries = [ranking_summary(m) for m in predicted]
                names = [name for name, _, _ in summaries]
                cell.truth += truth
                cell.predicted += names
                cell.confidence += [conf for _, conf, _ in summaries]
                cell.margin += [margin for _, _, margin in summaries]
                cell.fold_f1.append(f1_score(truth, names, average="macro", zero_division=0))
            print(f"fold {fold + 1}/{args.folds} done "
                  f"({time.monotonic() - started:.0f} s so far)", flush=True)

    rows = [row(cell, threshold, ambiguity, current) for cell in cells.values()]
    print()
    print(text_table(rows, threshold, ambiguity))
    total = time.monotonic() - started
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
    print(f"\n{args.folds} folds (seed {args.seed}), {len(examples)} examples; "
          f"non-trainable featurizers once {shared_seconds:.0f} s, trainable featurizers per "
          f"fold {fold_featurizing:.0f} s in all; total {total:.0f} s; load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    if args.errors:
        print()
        graded = [c for c in cells.values() if not c.baseline]
        chosen = cells.get(current) or max(graded, key=lambda c: f1_score(
            c.truth, c.predicted, average="macro", zero_division=0))
        print(error_report(chosen, texts, args.errors))
    print("\n--- markdown (paste into docs/nlu.md) ---\n")
    print(markdown(rows, args, len(examples), threshold, ambiguity, when,
                   (load_before, os.getloadavg()[0])))
    return 0


def row(cell: Cell, threshold: float, ambiguity: float,
        current: Tuple[float, float]) -> Dict[str, Any]:
    truth, predicted = np.array(cell.truth), np.array(cell.predicted)
    confidence, margin = np.array(cell.confidence), np.array(cell.margin)
    correct = truth == predicted
    low, ambiguous = confidence < threshold, margin < ambiguity
    to_fallback = low | ambiguous
    return {
        "C": cell.C, "dense_weight": cell.dense_weight,
        "current": (cell.C, cell.dense_weight) == current, "baseline": cell.baseline,
        "f1": f1_score(truth, predicted, average="macro", zero_division=0),
        "f1_sd": float(np.std(cell.fold_f1)),
        "accuracy": accuracy_score(truth, predicted),
        "low": low.mean(), "ambiguous": ambiguous.mean(), "fallback": to_fallback.mean(),
        "correct_fallback": (to_fallback & correct).sum() / max(correct.sum(), 1),
        "wrong_passed": (~to_fallback & ~correct).mean(),
        "seconds": cell.seconds,
    }


def error_report(cell: Cell, texts: List[str], limit: int) -> str:
    """Weakest intents and the most frequent confusions of one cell, with example texts:
    where new training examples help most."""
    truth, predicted = np.array(cell.truth), np.array(cell.predicted)
    intents = sorted(set(cell.truth))
    scores = f1_score(truth, predicted, labels=intents, average=None, zero_division=0)
    lines = [f"C={cell.C:g}, dense_weight={cell.dense_weight:g}: weakest intents (F1)"]
    lines += [f"  {scores[i]:.3f}  {intents[i]}" for i in np.argsort(scores)[:limit]]
    pairs: Dict[Tuple[str, str], List[str]] = {}
    for text, true, guess in zip(texts, cell.truth, cell.predicted, strict=True):
        if true != guess:
            pairs.setdefault((true, guess), []).append(text)
    lines.append("most frequent confusions (true -> predicted: count, examples)")
    for (true, guess), examples_of in sorted(pairs.items(), key=lambda kv: -len(kv[1]))[:limit]:
        lines.append(f"  {true} -> {guess}: {len(examples_of)}")
        lines += [f"      {text!r}" for text in examples_of[:4]]
    return "\n".join(lines)


def headers(threshold: float, ambiguity: float) -> List[str]:
    return ["C", "dense_weight", "macro-F1", "F1 sd", "accuracy", f"conf<{threshold:g}",
            f"margin<{ambiguity:g}", "fallback", "correct→fallback", "wrong passed", "seconds"]


def cells_of(r: Dict[str, Any]) -> List[str]:
    if r["baseline"]:
        head = ["Rasa LogisticRegressionClassifier", "–"]
    else:
        head = [f"{r['C']:g}", f"{r['dense_weight']:g}"]
    return [*head, f"{r['f1']:.3f}", f"{r['f1_sd']:.3f}",
            f"{r['accuracy']:.3f}", f"{r['low']:.1%}", f"{r['ambiguous']:.1%}",
            f"{r['fallback']:.1%}", f"{r['correct_fallback']:.1%}", f"{r['wrong_passed']:.1%}",
            f"{r['seconds']:.0f}"]


def text_table(rows: List[Dict[str, Any]], threshold: float, ambiguity: float) -> str:
    head = headers(threshold, ambiguity) + [""]
    body = [cells_of(r) + ["<- config.yml" if r["current"] else ""] for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(value.rjust(widths[i]) for i, value in enumerate(line)).rstrip()
                     for line in [head, *body])


def markdown(rows: List[Dict[str, Any]], args: argparse.Namespace, n: int, threshold: float,
             ambiguity: float, when: str, load: Tuple[float, float]) -> str:
    best = max((r for r in rows if not r["baseline"]), key=lambda r: r["f1"])
    lines = [
        SECTION,
        "",
        f"`bench/nlu_intent_grid.py --folds {args.folds}`, run {when} UTC on {n} intent "
        f"examples of `data/nlu/` (load average {load[0]:.2f} before, {load[1]:.2f} after, 2 "
        "shared cores). Featurizers are config.yml's, the trainable ones fit on each training "
        f"fold only; folds are StratifiedKFold(shuffle, seed {args.seed}) on the full intent. "
        "Macro-F1 and accuracy pool the out-of-fold predictions (F1 sd: over folds). Fallback "
        f"columns apply config.yml's FallbackClassifier (threshold {threshold:g}, "
        f"ambiguity_threshold {ambiguity:g}) to the classifier's ranking: *fallback* = either "
        "rule, *correct→fallback* = share of correct predictions it would discard, *wrong "
        "passed* = share of all messages predicted wrong and not caught. Seconds: training + "
        "prediction over all folds. **Bold**: config.yml's values.",
        "",
        "| " + " | ".join(headers(threshold, ambiguity)) + " |",
        "|" + "---:|" * len(headers(threshold, ambiguity)),
    ]
    for r in rows:
        values = cells_of(r)
        if r["current"]:
            values = [f"**{v}**" for v in values]
        lines.append("| " + " | ".join(values) + " |")
    lines += ["", f"Best macro-F1: C={best['C']:g}, dense_weight={best['dense_weight']:g} "
              f"({best['f1']:.3f})."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--C", type=floats, default=floats("5,10,20,50"),
                        help="comma-separated values of C (default 5,10,20,50)")
    parser.add_argument("--dense-weight", type=floats, default=floats("0,1,2,3"),
                        help="comma-separated values of dense_weight (default 0,1,2,3)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42, help="seed of the fold split")
    parser.add_argument("--baseline", action="store_true",
                        help="also run Rasa's LogisticRegressionClassifier (default config) "
                             "on the same folds and features")
    parser.add_argument("--errors", type=int, default=0, metavar="N",
                        help="also print the N weakest intents and N most frequent confusions "
                             "(with examples) of config.yml's cell, to guide new data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
