from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine
from tests import steps


@pytest.fixture(autouse=True)
def _reset_steps() -> Iterator[None]:
    steps.reset()
    yield
    steps.reset()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ocptask.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    with Engine(str(db_path), parallelism=4) as eng:
        yield eng
