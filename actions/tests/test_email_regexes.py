"""The email regexes are linear on long runs of word characters (no stall on a 100 KB message).

Unbounded repeats (``[A-Za-z0-9._%+-]+@...``) made every message without spaces quadratic: 10 KB
took ~1 s, 100 KB minutes. The three email patterns (the NLU's regex feature, identification,
the LLM's PII mask) have bounded repeats now; they still find ordinary addresses.
"""

from __future__ import annotations

import re
import time

import pytest
import yaml

from actions.answer_checks import mask_pii
from actions.tests.conftest import REPO
from actions.text_parsing import EMAIL_LIKE_RE, EMAIL_RE

pytestmark = pytest.mark.no_shop

HUNDRED_KB = {
    "one_token": "x" * 100_000,
    "email_like": "a" * 99_990 + "@example",
    "long_domain": "a@" + "b" * 99_990 + ".c",
    "dotted_domain": "a@" + "b." * 49_995,
    "many_ats": "a@" * 50_000,
    "dashes": "a-" * 50_000 + "@b.co",
    "mixed": ("a" * 60 + "@" + "b." * 100) * 200,
}
# generous for a shared 2-core machine: the old patterns took minutes on these inputs
BOUND_SECONDS = 3.0


def nlu_email_patterns() -> list[re.Pattern]:
    data = yaml.safe_load((REPO / "data" / "nlu" / "regex.yml").read_text(encoding="utf-8"))
    (entry,) = [e for e in data["nlu"] if e.get("regex") == "email"]
    examples = [line[2:] for line in entry["examples"].splitlines() if line.startswith("- ")]
    # the RegexFeaturizer runs with case_sensitive: false (config.yml)
    return [re.compile(p, re.IGNORECASE) for p in examples]


def patterns() -> dict[str, re.Pattern]:
    found = {"text_parsing.EMAIL_RE": EMAIL_RE, "text_parsing.EMAIL_LIKE_RE": EMAIL_LIKE_RE}
    for i, pattern in enumerate(nlu_email_patterns()):
        found[f"regex.yml email #{i}"] = pattern
    return found


@pytest.mark.parametrize("name", list(patterns()))
def test_email_pattern_is_fast_on_100kb(name: str) -> None:
    pattern = patterns()[name]
    for label, text in HUNDRED_KB.items():
        started = time.monotonic()
        list(pattern.finditer(text))
        pattern.sub(" ", text)
        seconds = time.monotonic() - started
        assert seconds < BOUND_SECONDS, f"{name} took {seconds:.1f} s on {label}"


@pytest.mark.parametrize("name", list(patterns()))
def test_email_pattern_still_finds_addresses(name: str) -> None:
    pattern = patterns()[name]
    for text, email in [
        ("mei.martin4637@example.com", "mei.martin4637@example.com"),
        ("it's John.Smith+shop@mail.example.co.uk, thanks", "John.Smith+shop@mail.example.co.uk"),
        ("my email is a_b-c@x-y.io.", "a_b-c@x-y.io"),
    ]:
        match = pattern.search(text)
        assert match and match.group(0) == email, (name, text)


def test_identification_rejects_an_overlong_local_part() -> None:
    """Over 64 characters before the "@" is no address (not its last 64 characters)."""
    assert EMAIL_RE.search("a" * 65 + "@example.com") is None
    assert EMAIL_RE.fullmatch("a" * 64 + "@example.com")


def test_mask_pii_on_100kb_is_fast_and_masks() -> None:
    started = time.monotonic()
    for text in HUNDRED_KB.values():
        mask_pii(text)
    assert time.monotonic() - started < 4 * BOUND_SECONDS
    assert mask_pii("write to mei.martin4637@example.com please") == "write to [email] please"
