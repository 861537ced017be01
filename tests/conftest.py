"""Shared fixtures: the TensorFlow backend (skipped with a reason where TensorFlow is absent)."""

from __future__ import annotations

import pytest

from linfit.backends import Backend, get_backend


@pytest.fixture(scope="session")
def tf_backend() -> Backend:
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
    return get_backend("tensorflow")
