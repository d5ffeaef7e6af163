"""Helpers for tests of operators and PINs: Argon2 at a test cost, an operator with a PIN."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from deskapp.services import auth


@pytest.fixture
def quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Argon2id, at the lowest cost it allows: the production cost (64 MiB, t=3) takes
    ~0.5 s per PIN on a busy 2-core machine, and these tests check many PINs. Hashes made at
    either cost verify under the other (the parameters are part of the hash)."""
    monkeypatch.setattr(auth, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
