import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """Tests never read the user's store, data root or cache."""
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LANDSCAPE_STORE", raising=False)
    monkeypatch.delenv("LANDSCAPE_DATA", raising=False)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {SHARED}: set LANDSCAPE_SHARED_DATA to the shared data folder")
    return SHARED
