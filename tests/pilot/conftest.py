"""App tests share one demo database per session (see tests/appfixtures.py)."""

import pytest

from tests.appfixtures import demo_db, demo_template  # noqa: F401 - pytest fixtures


@pytest.fixture(autouse=True)
def private_token_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotated tokens go to a file of the test's own, never to the user's data directory."""
    monkeypatch.setenv("DESKAPP_TOKEN_FILE", str(tmp_path_factory.mktemp("tokens") / "tokens.json"))
