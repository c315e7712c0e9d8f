"""The synchronous and asynchronous clients offer the same calls, and every REST route has one."""

from __future__ import annotations

import inspect

from veracity.client import AsyncClient, Client


def _public(cls: type) -> dict[str, list[inspect.Parameter]]:
    """Public methods and their parameters (``aclose`` counted as ``close``; return types differ)."""
    return {"close" if name == "aclose" else name: list(inspect.signature(fn).parameters.values())
            for name, fn in inspect.getmembers(cls, callable) if not name.startswith("_")}


def test_sync_and_async_clients_have_the_same_methods_and_parameters() -> None:
    sync, asyn = _public(Client), _public(AsyncClient)
    assert sorted(sync) == sorted(asyn)
    for name, params in sync.items():
        assert params == asyn[name], name


def test_every_rest_route_has_a_client_call() -> None:
    """Each method and path template of /api/v1 is used by some call of veracity.client._calls."""
    import re

    from veracity.client import _calls
    from veracity.config import Settings
    from veracity.web.app import create_app

    # dataset paths are built by _dataset_path(name): spell them out as the other calls are
    source = re.sub(r'_dataset_path\(name\)(?=,)', 'f"{API}/datasets/{name}"', inspect.getsource(_calls))
    source = source.replace("{_dataset_path(name)}", "{API}/datasets/{name}")
    used = {(m, re.sub(r"\{[^}]*\}", "{}", p)) for m, p in re.findall(r'Call\("(\w+)", f"\{API\}([^"]*)"', source)}
    paths = create_app(Settings(db="sqlite://"), migrate=False).openapi()["paths"]
    routes = {(method.upper(), re.sub(r"\{[^}]*\}", "{}", path.removeprefix("/api/v1")))
              for path, operations in paths.items() if path.startswith("/api/v1") for method in operations}
    assert len(routes) > 20
    assert routes - used == set()
