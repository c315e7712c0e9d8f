"""Offboarding and changing users: tokens listed and revoked, role, clearance, password and
deactivation, each in the audit log; as the service (SQLite and PostgreSQL) and as the CLI."""

from __future__ import annotations

import pytest

from _accounts import new_user
from veracity.errors import AuthenticationError, InvalidInputError, NotFoundError, PermissionDeniedError
from veracity.services import users as user_service
from veracity.services.audit import list_events, verify_chain
from veracity.storage import Database


def test_tokens_are_listed_and_revoked(db: Database) -> None:
    _, first = user_service.create_user(db, "ann", "annotator")
    second = user_service.create_token(db, "ann", "laptop")
    tokens = user_service.list_tokens(db, "ann")
    expected = [(first[:10], "default", None), (second[:10], "laptop", None)]
    assert [(t.prefix, t.name, t.revoked_at) for t in tokens] == expected
    assert first not in repr(tokens) and second not in repr(tokens)
    assert user_service.revoke_tokens(db, "ann", prefix=first[:10]) == 1
    with pytest.raises(AuthenticationError):
        user_service.authenticate_token(db, first)
    assert user_service.authenticate_token(db, second).name == "ann"
    with pytest.raises(NotFoundError, match=r"no live token starting with"):
        user_service.revoke_tokens(db, "ann", prefix=first[:10])  # already revoked
    assert user_service.revoke_tokens(db, "ann") == 1  # all the rest
    with pytest.raises(AuthenticationError):
        user_service.authenticate_token(db, second)
    assert [t.revoked_at is not None for t in user_service.list_tokens(db, "ann")] == [True, True]
    actions = [e["action"] for e in list_events(db, object_type="user")]
    assert actions.count("token.revoke") == 2 and "token.create" in actions
    assert verify_chain(db).ok


def test_role_clearance_password_and_deactivation(db: Database) -> None:
    _, token = user_service.create_user(db, "bob", "annotator", password="old-pass")
    actor = user_service.authenticate_password(db, "bob", "old-pass")
    sid, _ = user_service.create_session(db, actor)
    view = user_service.update_user(db, "bob", role="reviewer", clearance=3)
    assert (view.role, view.clearance, view.is_active) == ("reviewer", 3, True)
    assert user_service.authenticate_token(db, token).clearance == 3
    assert user_service.authenticate_session(db, sid)[0].role == "reviewer"  # same session, new rights
    user_service.update_user(db, "bob", password="new-pass")
    with pytest.raises(AuthenticationError):
        user_service.authenticate_session(db, sid)  # a new password ends the sessions
    with pytest.raises(AuthenticationError):
        user_service.authenticate_password(db, "bob", "old-pass")
    sid = user_service.create_session(db, user_service.authenticate_password(db, "bob", "new-pass"))[0]
    user_service.update_user(db, "bob", active=False)
    for check in (
        lambda: user_service.authenticate_token(db, token),
        lambda: user_service.authenticate_session(db, sid),
        lambda: user_service.authenticate_password(db, "bob", "new-pass"),
    ):
        with pytest.raises(AuthenticationError):
            check()
    user_service.update_user(db, "bob", active=True)
    assert user_service.authenticate_token(db, token).name == "bob"  # the token was not revoked
    events = [e for e in list_events(db, object_type="user") if e["action"] == "user.update"]
    payloads = [e["payload"] for e in events]
    assert {"name": "bob", "role": ["annotator", "reviewer"], "clearance": [0, 3]} in payloads
    assert {"name": "bob", "password": "changed"} in payloads
    assert {"name": "bob", "active": [True, False]} in payloads
    assert "new-pass" not in repr(events) and "scrypt" not in repr(events)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clearance": 10}, r"clearance: expected an integer from 0 to 9, got 10"),
        ({"clearance": -1}, r"clearance: expected an integer from 0 to 9"),
        ({"clearance": True}, r"clearance: expected an integer"),
        ({"role": "wizard"}, r"role: expected one of"),
        ({"password": "abc"}, r"password: expected at least 4 characters"),
    ],
)
def test_bad_changes_are_refused(db: Database, kwargs: dict[str, object], match: str) -> None:
    user_service.create_user(db, "cat", "annotator")
    with pytest.raises(InvalidInputError, match=match):
        user_service.update_user(db, "cat", **kwargs)  # type: ignore[arg-type]
    assert user_service.get_user(db, "cat").clearance == 0


def test_only_admins_change_users(db: Database) -> None:
    manager = new_user(db, "mia", "manager")
    user_service.create_user(db, "dan", "annotator")
    with pytest.raises(PermissionDeniedError):
        user_service.update_user(db, "dan", role="admin", actor=manager)
    with pytest.raises(PermissionDeniedError):
        user_service.revoke_tokens(db, "dan", actor=manager)
    with pytest.raises(PermissionDeniedError):
        user_service.create_token(db, "dan", actor=manager)
    with pytest.raises(InvalidInputError, match=r"clearance: expected an integer from 0 to 9, got 12"):
        user_service.create_user(db, "eve", "annotator", clearance=12)
    with pytest.raises(NotFoundError):
        user_service.update_user(db, "nobody", role="admin")


def test_cli_offboarding(cli_runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'w.db'}"
    created = cli_runner.run("users", "create", "fay", "--role", "annotator", "--db", url)
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    listed = cli_runner.run("users", "tokens", "fay", "--db", url)
    assert listed.exit_code == 0 and token[:10] in listed.output and token not in listed.output
    assert cli_runner.run("users", "revoke", "fay", "--db", url).exit_code == 2  # neither --token nor --all
    revoked = cli_runner.run("users", "revoke", "fay", "--token", token[:10], "--db", url)
    assert revoked.exit_code == 0 and "Revoked 1 token(s)" in revoked.output
    with pytest.raises(AuthenticationError):
        user_service.authenticate_token(Database(url), token)
    updated = cli_runner.run("users", "update", "fay", "--clearance", "2", "--deactivate", "--db", url)
    assert updated.exit_code == 0 and "clearance 2, deactivated" in updated.output
    assert cli_runner.run("users", "update", "fay", "--db", url).exit_code == 2  # nothing to change
    bad = cli_runner.run("users", "update", "fay", "--clearance", "11", "--db", url)
    assert bad.exit_code == 2 and "clearance: expected an integer from 0 to 9, got 11" in " ".join(bad.output.split())
