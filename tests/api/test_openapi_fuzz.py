"""Property-based requests generated from our own OpenAPI description (schemathesis): whatever a
client sends that fits the published schema, the API answers without a server error."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from veracity.config import Settings
from veracity.services.projects import create_project, import_items
from veracity.services.users import authenticate_token, create_user
from veracity.storage import Database
from veracity.storage.migrate import upgrade
from veracity.web.app import create_app

TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder: Path = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{folder / 'fuzz.db'}"
    upgrade(url)
    db = Database(url)
    _, token = create_user(db, "fuzzer", "admin")
    TOKEN["value"] = token
    actor = authenticate_token(db, token)
    project = create_project(db, actor, name="Fuzz", schema={"kind": "classification", "labels": ["a", "b"]})
    import_items(db, actor, project.id, [{"text": f"t{i}"} for i in range(5)])
    app = create_app(Settings(db=url, data_dir=folder), database=db, migrate=False)
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


def test_no_server_errors(api_schema) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {TOKEN['value']}"}
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )

        run()
        checked.append(operation.label)
    assert len(checked) >= 20, checked
