"""Workspace commands: init, serve, demo, users."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from veracity.cli._common import DbOption, console, fail
from veracity.config import get_settings
from veracity.services import users as user_service
from veracity.services.actors import ROLES
from veracity.storage import Database
from veracity.storage.migrate import upgrade

__all__ = ["register"]

users_app = typer.Typer(help="Manage users and API tokens.", no_args_is_help=True)


def _open(db: str | None, *, create: bool = True) -> Database:
    settings = get_settings(db=db)
    database = Database(settings.db, create=create)
    upgrade(database)
    return database


def init(db: DbOption = None) -> None:
    """Create the workspace database (or upgrade it to the latest schema)."""
    database = _open(db)
    console.print(f"Workspace ready: {database.url}")


def serve(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL recommended for more than 1).")] = 1,
) -> None:
    """Serve the web UI and the REST API."""
    import uvicorn

    from veracity.web.app import create_app

    settings = get_settings(db=db, host=host, port=port)
    database = Database(settings.db, create=True)  # fails with one clear line on a bad path
    upgrade(database)
    console.print(f"Veracity on http://{settings.host}:{settings.port}  (database {database.url})")
    if workers > 1:
        os.environ["VERACITY_DB"] = settings.db
        uvicorn.run("veracity.web.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level=settings.log_level)
        return
    app = create_app(settings, database=database, migrate=False)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)


def demo(
    db: DbOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build the sample workspace and exit.")] = False,
) -> None:
    """Build (idempotently) a sample workspace with data, then serve it on 127.0.0.1."""
    from veracity.services.demo import build_demo

    settings = get_settings(db=db, port=port)
    database = Database(settings.db, create=True)
    upgrade(database)
    with console.status("Building the sample workspace..."):
        summary = build_demo(database, media_dir=settings.data_dir / "media")
    for line in summary.lines():
        console.print(line)
    if no_serve:
        return
    import uvicorn

    from veracity.web.app import create_app

    app = create_app(settings, database=database, migrate=False)
    login = f"[bold]{summary.login}[/] / [bold]{summary.password}[/]"
    console.print(f"\nOpen http://127.0.0.1:{port}/  and sign in as {login}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="User name (no spaces).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "annotator",
    password: Annotated[str | None, typer.Option(help="Password for the web UI (optional).")] = None,
    clearance: Annotated[int, typer.Option(help="Highest sensitivity marking the user may read (0-9).")] = 0,
    db: DbOption = None,
) -> None:
    """Create a user; the new API token is printed on the last line."""
    database = _open(db)
    user, token = user_service.create_user(database, name, role, password=password, clearance=clearance)
    console.print(f"Created user {user.name} (role {user.role}, clearance {user.clearance}). API token:")
    typer.echo(token)


@users_app.command("list")
def users_list(db: DbOption = None) -> None:
    """List users."""
    database = _open(db)
    for u in user_service.list_users(database):
        typer.echo(f"{u.id}\t{u.name}\t{u.role}\tclearance={u.clearance}")


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="User name.")],
    label: Annotated[str, typer.Option(help="What the token is for (shown by 'users tokens').")] = "default",
    db: DbOption = None,
) -> None:
    """Issue a new API token for a user; the token is printed on the last line."""
    database = _open(db)
    typer.echo(user_service.create_token(database, name, label))


@users_app.command("tokens")
def users_tokens(name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = None) -> None:
    """List a user's API tokens (their first characters, never the tokens) and which are revoked."""
    database = _open(db)
    for t in user_service.list_tokens(database, name):
        state = f"revoked {t.revoked_at}" if t.revoked_at else "live"
        typer.echo(f"{t.prefix}\t{t.name}\tcreated {t.created_at}\tlast used {t.last_used_at or '-'}\t{state}")


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="User name.")],
    token: Annotated[
        str | None, typer.Option("--token", help="The token, or its first characters as 'users tokens' lists them.")
    ] = None,
    all_tokens: Annotated[bool, typer.Option("--all", help="Revoke every live token of the user.")] = False,
    db: DbOption = None,
) -> None:
    """Revoke API tokens of a user: they stop working at once."""
    if (token is None) == (not all_tokens):
        fail("give --token PREFIX or --all")
    database = _open(db)
    n = user_service.revoke_tokens(database, name, prefix=token)
    console.print(f"Revoked {n} token(s) of {name}.", highlight=False)


@users_app.command("update")
def users_update(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str | None, typer.Option(help=f"New role: one of {', '.join(ROLES)}.")] = None,
    clearance: Annotated[int | None, typer.Option(help="New clearance (0-9).")] = None,
    password: Annotated[str | None, typer.Option(help="New web UI password (ends the user's sessions).")] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--deactivate", help="Reactivate, or deactivate (tokens and sessions stop working)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Change a user's role, clearance, password, or deactivate the account; recorded in the audit log."""
    if role is None and clearance is None and password is None and active is None:
        fail("nothing to change: give --role, --clearance, --password, --active or --deactivate")
    database = _open(db)
    u = user_service.update_user(database, name, role=role, clearance=clearance, password=password, active=active)
    state = "active" if u.is_active else "deactivated"
    console.print(f"{u.name}: role {u.role}, clearance {u.clearance}, {state}.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(serve)
    app.command()(demo)
    app.add_typer(users_app, name="users")
