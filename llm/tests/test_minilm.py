"""The numpy MiniLM encoder shared by retrieval (action server) and /v1/embeddings."""

from __future__ import annotations

import math

import numpy as np

from llm.minilm import MiniLMEncoder, erf


def test_erf_matches_the_exact_function():
    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    exact = np.array([math.erf(float(v)) for v in x])
    assert float(np.max(np.abs(erf(x) - exact))) < 5e-7  # float32 rounding on top of 1.5e-7


def test_sentence_vectors_rank_paraphrases_first():
    enc = MiniLMEncoder()
    v = enc.encode(["How long does a refund to my card take?",
                    "credit card refunds take 5 to 7 business days", "the weather in Paris"])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2
