"""Fixtures shared by the workflow tests."""

import pytest

from mirror import LoopbackMirror
from project import archives


@pytest.fixture(scope="module")
def mirror(data):
    """A loopback mirror serving, as IDX archives, the `data` splits of the module that asks for
    it (each such module defines its own `data` fixture)."""
    with LoopbackMirror(archives(data)) as server:
        yield server
