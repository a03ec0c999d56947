import pytest

from nvfp4.registry import REGISTRY
from nvfp4.tuning import TUNER


@pytest.fixture
def fresh_registry(monkeypatch):
    """A registry and tuner that reload from scratch, restored afterwards."""
    REGISTRY.reset()
    TUNER.reset()
    yield REGISTRY
    REGISTRY.reset()
    TUNER.reset()
