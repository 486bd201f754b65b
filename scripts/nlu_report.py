"""Summarise a `rasa test nlu` output folder into docs/nlu.md (intent and entity F1).

Used by `make nlu-cv` after 5-fold cross-validation, so the numbers in the docs always come
from a run anyone can reproduce.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter
from datetime import date
from pathlib import Path

INTENT_TARGET = ENTITY_TARGET = 0.95
# docs/nlu.md from this line on is written by hand and kept when the numbers are rewritten
HAND_WRITTEN = "<!-- written by hand below: kept by scripts/nlu_report.py -->"


def load(folder: Path, name: str) -> dict:
    path = folder / name
    return json.loads(path.read_text()) if path.is_file() else {}


def per_label_table(report: dict, header: str) -> list[str]:
    rows = [f"| {header} | precision | recall | F1 | examples |", "|---|---|---|---|---|"]
    for label, scores in sorted(report.items()):
        if not isinstance(scores, dict) or "f1-score" not in scores or " avg" in label:
            continue
        rows.append(f"| {label} | {scores['precision']:.3f} | {scores['recall']:.3f} | "
                    f"{scores['f1-score']:.3f} | {scores['support']} |")
    return rows


def top_confusions(folder: Path, limit: int = 10) -> list[str]:
    """The most frequent (true -> predicted) intent pairs among the misclassified examples."""
    errors = folder / "intent_errors.json"
    if not errors.is_file():
        return []
    pairs = Counter(
        (e["intent"], (e.get("intent_prediction") or {}).get("name") or "None")
        for e in json.loads(errors.read_text())
    )
    rows = ["| true intent | predicted | count |", "|---|---|---|"]
    rows += [f"| {true} | {pred} | {n} |" for (true, pred), n in pairs.most_common(limit)]
    return rows


def main(results: str = "results/nlu-cv", out: str = "docs/nlu.md") -> int:
    folder, target = Path(results), Path(out)
    intents = load(folder, "intent_report.json")
    entities = load(folder, "DIETClassifier_report.json")
    responses = load(folder, "response_selection_report.json")
    intent_f1 = intents.get("macro avg", {}).get("f1-score", 0.0)
    entity_f1 = entities.get("macro avg", {}).get("f1-score", 0.0)
    entity_micro = entities.get("micro avg", {}).get("f1-score", entity_f1)
    response_f1 = responses.get("macro avg", {}).get("f1-score")

    images = target.parent / "images"
    images.mkdir(parents=True, exist_ok=True)
    matrix = folder / "intent_confusion_matrix.png"
    if matrix.is_file():
        shutil.copy(matrix, images / "nlu_intent_confusion_matrix.png")

    def verdict(value: float, goal: float) -> str:
        return "meets" if value >= goal else "MISSES"

    confusions = top_confusions(folder)
    lines = [
        "# NLU quality (5-fold cross-validation)",
        "",
        f"Measured {date.today().isoformat()} with `make nlu-cv` (`rasa test nlu --cross-validation"
        " --folds 5` on `data/nlu/`, pipeline of `config.yml`: all-MiniLM-L6-v2 transformer "
        "featurizer; intents by `addons.classifiers.TfidfEmbeddingIntentClassifier`, "
        "entities by DIET, FAQ answers by the ResponseSelector).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| intent macro-F1 | **{intent_f1:.3f}** | >= {INTENT_TARGET} |",
        f"| entity macro-F1 (DIET) | **{entity_f1:.3f}** | >= {ENTITY_TARGET} |",
        f"| entity micro-F1 (DIET) | {entity_micro:.3f} | |",
    ]
    if response_f1 is not None:
        lines.append(f"| FAQ response selection macro-F1 | {response_f1:.3f} | |")
    lines += [
        "",
        f"The pipeline {verdict(intent_f1, INTENT_TARGET)} the intent target and "
        f"{verdict(entity_f1, ENTITY_TARGET)} the entity target. Each fold trains on 4/5 of "
        "`data/nlu/` and is tested on the other 1/5; misclassified examples are listed in "
        f"`{folder}/intent_errors.json` and `{folder}/DIETClassifier_errors.json`.",
        "",
        "![intent confusion matrix](images/nlu_intent_confusion_matrix.png)",
        "",
        "## Intents",
        "",
        *per_label_table(intents, "intent"),
        "",
        "## Entities",
        "",
        *per_label_table(entities, "entity"),
        "",
    ]
    if confusions:
        lines += ["## Most frequent intent confusions", "", *confusions, ""]
    kept = ""
    if target.is_file() and HAND_WRITTEN in target.read_text():
        kept = target.read_text()[target.read_text().index(HAND_WRITTEN):]
    target.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    print(f"intent macro-F1 {intent_f1:.3f}, entity macro-F1 {entity_f1:.3f} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
