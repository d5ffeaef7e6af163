"""App tests share one demo database per session (see tests/appfixtures.py)."""

from tests.appfixtures import demo_db, demo_template  # noqa: F401 - pytest fixtures
