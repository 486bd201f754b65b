"""The GGUF is joined from its parts only when size and sha256 match the recorded ones."""

from __future__ import annotations

import hashlib

import pytest

from llm import assemble as asm


@pytest.fixture()
def parts(tmp_path, monkeypatch):
    files = []
    for i, data in enumerate([b"GGUF" + b"a" * 100, b"b" * 50]):
        f = tmp_path / f"part{i:02d}.bin"
        f.write_bytes(data)
        files.append(f)
    whole = b"".join(f.read_bytes() for f in files)
    monkeypatch.setattr(asm, "part_files", lambda: files)
    monkeypatch.setattr(asm, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(asm, "GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    return tmp_path, whole


def test_assembles_and_marks_a_verified_file(parts):
    folder, whole = parts
    target = folder / "out" / "model.gguf"
    assert asm.assemble(target) == target
    assert target.read_bytes() == whole and asm.is_assembled(target)
    assert asm.assemble(target) == target  # second run: a stat, nothing rewritten


def test_refuses_a_wrong_digest_and_leaves_nothing(parts, monkeypatch):
    folder, _ = parts
    monkeypatch.setattr(asm, "GGUF_SHA256", "0" * 64)
    target = folder / "model.gguf"
    with pytest.raises(asm.AssemblyError, match="sha256"):
        asm.assemble(target)
    assert not target.exists() and not list(folder.glob("*.partial"))


def test_refuses_a_missing_byte(parts, monkeypatch):
    folder, whole = parts
    monkeypatch.setattr(asm, "GGUF_SIZE", len(whole) + 1)
    with pytest.raises(asm.AssemblyError, match="reinstall"):
        asm.assemble(folder / "model.gguf")


def test_installed_parts_are_the_recorded_release():
    """The 22 installed parts add up to the recorded size (the digest is checked at install)."""
    assert sum(f.stat().st_size for f in asm.part_files()) == asm.GGUF_SIZE
