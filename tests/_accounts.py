"""Signed-in users for service-level tests: ``from _accounts import new_user, new_user_and_token``.

Importable from any test folder (``tests/`` is on the path because ``tests/conftest.py`` lives there).
"""

from __future__ import annotations

from veracity.services.actors import Actor
from veracity.services.users import authenticate_token, create_user
from veracity.storage import Database


def new_user_and_token(db: Database, name: str, role: str = "annotator") -> tuple[Actor, str]:
    """Create user ``name`` with the global ``role``; the signed-in actor and its API token."""
    _, token = create_user(db, name, role)
    return authenticate_token(db, token), token


def new_user(db: Database, name: str, role: str = "annotator") -> Actor:
    """Create user ``name`` with the global ``role`` and return it signed in."""
    return new_user_and_token(db, name, role)[0]
