"""Fixtures of the answer tests."""

from __future__ import annotations

import pytest

from ispo.answers import verify_batch


@pytest.fixture(scope="session")
def warm():
    """Start the shared workers once, so no test's time bound includes a worker start."""
    golds = [str(n) for n in range(128)]
    assert verify_batch(golds, [rf"\boxed{{{gold}}}" for gold in golds]) == [True] * 128
