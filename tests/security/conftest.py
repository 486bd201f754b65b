"""One running assistant (real shop, action server, Rasa) attacked from outside by the tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conversations.harness import Stack, remove_stack, start_stack

os.environ.setdefault("HARNESS_RASA_TIMEOUT", "420")  # Rasa's start is slow on 2 busy cores


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    running = start_stack()
    yield running
    remove_stack(running)
