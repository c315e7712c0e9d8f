"""API test fixtures: the real app on a real database, called in-process through httpx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from veracity.config import Settings
from veracity.services import Actor
from veracity.services.users import create_user
from veracity.storage import Database
from veracity.web.app import create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


PASSWORD = "pw-1234"  # of every user made by Api.person


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


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

    def person(self, name: str, role: str, clearance: int = 0) -> Actor:
        """A user who can sign in to the screens (password ``PASSWORD``) and call the API (``auth``)."""
        view, token = create_user(self.db, name, role, password=PASSWORD, clearance=clearance)
        self.tokens[name] = token
        return Actor(view.id, view.name, view.role, view.clearance)

    async def sign_in(self, name: str) -> str:
        """Sign ``name`` in through the form, as a browser does; the CSRF token of the new session."""
        self.client.cookies.clear()
        page = await self.client.get("/login")
        r = await self.client.post("/login", data={"username": name, "password": PASSWORD,
                                                   "csrf_token": csrf_of(page.text)})
        assert r.status_code == 303, r.text
        assert "httponly" in r.headers["set-cookie"].lower()
        home = await self.client.get("/")
        assert home.status_code == 200
        return csrf_of(home.text)


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
