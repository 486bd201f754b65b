"""Fixtures: one running assistant stack shared by the conversation tests of a session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conversations.harness import Stack, remove_stack, start_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    running = start_stack()
    yield running
    remove_stack(running)
