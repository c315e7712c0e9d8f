"""API test fixtures: the real app on a real database, called in-process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from veracity.config import Settings
from veracity.services.users import create_user
from veracity.storage import Database
from veracity.web.app import create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Api:
    db: Database
    client: httpx.AsyncClient
    tokens: dict[str, str]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def add_user(self, name: str, role: str) -> str:
        _, token = create_user(self.db, name, role)
        self.tokens[name] = token
        return token


@pytest.fixture
async def api(db_url: str, tmp_path) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    settings = Settings(db=db_url, data_dir=tmp_path)
    db = Database(db_url)
    app = create_app(settings, database=db, migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        result = Api(db, client, {})
        result.add_user("admin", "admin")
        yield result
    db.dispose()
