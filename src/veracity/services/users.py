"""Users, API tokens, passwords and browser sessions."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veracity.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from veracity.services._common import as_utc, iso, now
from veracity.services.actors import ROLES, Actor
from veracity.services.audit import append_event
from veracity.storage import Database
from veracity.storage.fast import FastSelect
from veracity.storage.models import ApiToken, User, WebSession

__all__ = [
    "TokenView",
    "UserView",
    "authenticate_password",
    "authenticate_session",
    "authenticate_token",
    "create_session",
    "create_token",
    "create_user",
    "delete_session",
    "get_user",
    "hash_password",
    "list_tokens",
    "list_users",
    "revoke_tokens",
    "update_user",
    "verify_password",
]

TOKEN_PREFIX = "vr_"
SESSION_DAYS = 7
MIN_PASSWORD = 4
MAX_CLEARANCE = 9  # markings and clearances are 0-9


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    name: str
    role: str
    clearance: int
    is_active: bool


def _view(u: User) -> UserView:
    return UserView(u.id, u.name, u.role, u.clearance, u.is_active)


@dataclass(frozen=True, slots=True)
class TokenView:
    """An API token as it may be shown: its first characters, never the token."""

    id: int
    prefix: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


def _check_clearance(clearance: object) -> int:
    if isinstance(clearance, bool) or not isinstance(clearance, int) or not 0 <= clearance <= MAX_CLEARANCE:
        raise InvalidInputError(f"clearance: expected an integer from 0 to {MAX_CLEARANCE}, got {clearance!r}")
    return clearance


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role


def _user(s: Session, name: str) -> User:
    user = s.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return user


def _admin_only(actor: Actor | None, what: str) -> None:
    if actor is not None and not actor.is_admin:
        raise PermissionDeniedError(f"only an admin can {what}")


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"password: expected at least {MIN_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    """scrypt (RFC 7914) with a random salt: ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got.hex(), digest)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 120 or any(c.isspace() for c in name):
        raise InvalidInputError(f"user name: expected 1-120 characters without spaces, got {name!r}")
    return name


def _new_token(session: Session, user_id: int, label: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, token_hash=_token_hash(token), prefix=token[:10], name=label))
    return token


def create_user(
    db: Database,
    name: str,
    role: str,
    *,
    password: str | None = None,
    clearance: int = 0,
    actor: Actor | None = None,
) -> tuple[UserView, str]:
    """Create a user and a first API token; return the user and the token (shown once)."""
    name = _check_name(name)
    _check_role(role)
    _admin_only(actor, "create users")
    clearance = _check_clearance(clearance)
    if password is not None:
        _check_password(password)
    try:
        with db.transaction() as s:
            user = User(name=name, role=role, clearance=clearance,
                        password_hash=hash_password(password) if password else None)
            s.add(user)
            s.flush()
            token = _new_token(s, user.id, "default")
            append_event(s, actor=actor.name if actor else "system", action="user.create", object_type="user",
                         object_id=user.id, payload={"name": name, "role": role, "clearance": clearance})
            view = _view(user)
    except IntegrityError as exc:
        raise ConflictError(f"a user named {name!r} already exists") from exc
    return view, token


def create_token(db: Database, user_name: str, label: str = "default", *, actor: Actor | None = None) -> str:
    """Issue a new API token for ``user_name``; return it (shown once: only its hash is stored)."""
    _admin_only(actor, "issue tokens")
    with db.transaction() as s:
        user = _user(s, user_name)
        token = _new_token(s, user.id, label)
        append_event(s, actor=actor.name if actor else "system", action="token.create", object_type="user",
                     object_id=user.id, payload={"prefix": token[:10], "name": label})
        return token


def list_tokens(db: Database, user_name: str) -> list[TokenView]:
    """The user's API tokens, oldest first, revoked ones included."""
    with db.transaction(write=False) as s:
        user = _user(s, user_name)
        rows = s.execute(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)).scalars()
        return [
            TokenView(t.id, t.prefix, t.name, iso(t.created_at) or "", iso(t.last_used_at), iso(t.revoked_at))
            for t in rows
        ]


def revoke_tokens(db: Database, user_name: str, *, prefix: str | None = None, actor: Actor | None = None) -> int:
    """Revoke the user's live API tokens that start with ``prefix`` (all of them when None); they
    stop working at once. Returns how many were revoked; a prefix that matches none is an error."""
    _admin_only(actor, "revoke tokens")
    with db.transaction() as s:
        user = _user(s, user_name)
        live = [t for t in s.execute(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))
                .scalars() if prefix is None or t.prefix.startswith(prefix) or prefix.startswith(t.prefix)]
        if prefix is not None and not live:
            raise NotFoundError(f"user {user_name!r} has no live token starting with {prefix!r}")
        at = now()
        for t in live:
            t.revoked_at = at
        append_event(s, actor=actor.name if actor else "system", action="token.revoke", object_type="user",
                     object_id=user.id, payload={"prefixes": [t.prefix for t in live]})
        return len(live)


def update_user(
    db: Database,
    name: str,
    *,
    role: str | None = None,
    clearance: int | None = None,
    password: str | None = None,
    active: bool | None = None,
    actor: Actor | None = None,
) -> UserView:
    """Change a user's role, clearance, password or whether the account is active.

    A deactivated user's tokens and browser sessions stop working at once (both are checked
    against the account on every request); a new password or a deactivation also ends the user's
    browser sessions. Written to the audit log as ``user.update`` (the password as "changed").
    """
    _admin_only(actor, "change users")
    if role is not None:
        _check_role(role)
    if clearance is not None:
        _check_clearance(clearance)
    if password is not None:
        _check_password(password)
    with db.transaction() as s:
        user = _user(s, name)
        changes: dict[str, object] = {}
        if role is not None and role != user.role:
            changes["role"] = [user.role, role]
            user.role = role
        if clearance is not None and clearance != user.clearance:
            changes["clearance"] = [user.clearance, clearance]
            user.clearance = clearance
        if active is not None and active != user.is_active:
            changes["active"] = [user.is_active, active]
            user.is_active = active
        if password is not None:
            changes["password"] = "changed"
            user.password_hash = hash_password(password)
        if password is not None or active is False:
            s.execute(delete(WebSession).where(WebSession.user_id == user.id))
        if changes:
            append_event(s, actor=actor.name if actor else "system", action="user.update", object_type="user",
                         object_id=user.id, payload={"name": user.name, **changes})
        return _view(user)


def get_user(db: Database, name: str) -> UserView:
    with db.transaction(write=False) as s:
        return _view(_user(s, name))


def list_users(db: Database) -> list[UserView]:
    with db.transaction(write=False) as s:
        return [_view(u) for u in s.execute(select(User).order_by(User.id)).scalars()]


def _actor(u: User) -> Actor:
    return Actor(user_id=u.id, name=u.name, role=u.role, clearance=u.clearance)


# Every API request runs this: one statement compiled once, no ORM session.
_TOKEN_ACTOR = FastSelect(
    select(User.id, User.name, User.role, User.clearance, User.is_active)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


def authenticate_token(db: Database, token: str) -> Actor:
    """The actor behind an API token, or :class:`AuthenticationError`.

    Looked up on every request (no cache), so a revoked token or deactivated user is refused at once.
    """
    with db.connect(write=False) as conn:
        row = _TOKEN_ACTOR.first(conn, {"token_hash": _token_hash(token)})
    if row is None or not row.is_active:
        raise AuthenticationError("invalid or revoked API token")
    return Actor(user_id=row.id, name=row.name, role=row.role, clearance=row.clearance)


@functools.cache
def _decoy_hash() -> str:
    """A password hash no password matches, checked for unknown names (made once, when first needed)."""
    return hash_password(secrets.token_urlsafe(24))


def authenticate_password(db: Database, name: str, password: str) -> Actor:
    """The actor whose name and password these are, or :class:`AuthenticationError`.

    An unknown or deactivated name, or one without a password, costs the same scrypt work as a
    wrong password, so that the time of the answer does not tell which names exist.
    """
    with db.transaction(write=False) as s:
        user = s.execute(select(User).where(User.name == name.strip())).scalar_one_or_none()
        stored = user.password_hash if user is not None and user.is_active and user.password_hash else None
        if not verify_password(password, stored or _decoy_hash()) or stored is None:
            raise AuthenticationError("unknown user name or wrong password")
        assert user is not None
        return _actor(user)


def create_session(db: Database, actor: Actor) -> tuple[str, str]:
    """Start a browser session; return (cookie value, CSRF token)."""
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with db.transaction() as s:
        s.add(WebSession(id_hash=_token_hash(sid), user_id=actor.user_id, csrf_token=csrf,
                         expires_at=now() + dt.timedelta(days=SESSION_DAYS)))
    return sid, csrf


def authenticate_session(db: Database, sid: str) -> tuple[Actor, str]:
    """The actor and CSRF token of a live browser session."""
    with db.transaction(write=False) as s:
        ws = s.get(WebSession, _token_hash(sid))
        if ws is None or as_utc(ws.expires_at) < now():
            raise AuthenticationError("session expired: sign in again")
        user = s.get(User, ws.user_id)
        if user is None or not user.is_active:
            raise AuthenticationError("session expired: sign in again")
        return _actor(user), ws.csrf_token


def delete_session(db: Database, sid: str) -> None:
    with db.transaction() as s:
        ws = s.get(WebSession, _token_hash(sid))
        if ws is not None:
            s.delete(ws)
