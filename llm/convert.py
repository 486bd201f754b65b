"""Convert the packaged GGUF once into a plain transformers folder (fast to load at start-up).

`python -m llm.convert` — a no-op when the output already exists. Loading the GGUF dequantises it
(~30 s); `save_pretrained` refuses GGUF-loaded models, so the weights are copied into a fresh
model built from the same config and saved from there.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from llm.paths import converted_dir, gguf_path

MARKER = "CONVERTED_OK"


def is_converted(out: Path) -> bool:
    return (out / MARKER).exists()


def convert(out: Path, force: bool = False) -> Path:
    """Write the converted model to `out` unless it is already there."""
    if is_converted(out) and not force:
        print(f"llm.convert: {out} exists, nothing to do")
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    t0 = time.time()
    gguf_model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_config(gguf_model.config)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    # tied embeddings show up as "missing" lm_head; anything else is a real problem
    real_missing = [k for k in missing if not k.startswith("lm_head")]
    if real_missing or unexpected:
        raise RuntimeError(f"weights mismatch: missing={real_missing} unexpected={unexpected}")
    model.tie_weights()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(f"from {src.name}\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"llm.convert: wrote {out} in {time.time() - t0:.0f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=converted_dir())
    parser.add_argument("--force", action="store_true", help="convert again even if present")
    args = parser.parse_args(argv)
    convert(args.out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
