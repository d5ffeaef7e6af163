"""Fixtures for tests that run the app: each test gets its own copy of one small demo database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.appkit import build_demo_db_sync


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_db_sync(tmp_path_factory.mktemp("demo") / "demo.db")


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "demo.db"
    shutil.copy(demo_template, target)
    return target
