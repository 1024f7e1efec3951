"""Fixtures only; shared helpers live in tests/helpers."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own journal/crash folder, never the user's."""
    monkeypatch.setenv("UNSLOTH_DOCTOR_STATE", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def knowledge_base():
    """The bundled knowledge base, loaded once for the whole run (as a command loads it once)."""
    from doctor.api import load_knowledge

    return load_knowledge(use_cache=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_gpu = shutil.which("nvidia-smi") is not None
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs an NVIDIA GPU"))
