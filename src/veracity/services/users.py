"""Users, API tokens, passwords and browser sessions."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veracity.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from veracity.services._common import as_utc, now
from veracity.services.actors import ROLES, Actor
from veracity.services.audit import append_event
from veracity.storage import Database
from veracity.storage.fast import FastSelect
from veracity.storage.models import ApiToken, User, WebSession

__all__ = [
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
    "list_users",
    "verify_password",
]

TOKEN_PREFIX = "vr_"
SESSION_DAYS = 7


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    name: str
    role: str
    clearance: int
    is_active: bool


def _view(u: User) -> UserView:
    return UserView(u.id, u.name, u.role, u.clearance, u.is_active)


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
    if role not in ROLES:
        raise InvalidInputError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    if actor is not None and not actor.is_admin:
        raise PermissionDeniedError("only an admin can create users")
    if password is not None and len(password) < 4:
        raise InvalidInputError("password: expected at least 4 characters")
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


def create_token(db: Database, user_name: str, label: str = "default") -> str:
    with db.transaction() as s:
        user = s.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
        if user is None:
            raise NotFoundError(f"no user named {user_name!r}")
        return _new_token(s, user.id, label)


def get_user(db: Database, name: str) -> UserView:
    with db.transaction(write=False) as s:
        user = s.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if user is None:
            raise NotFoundError(f"no user named {name!r}")
        return _view(user)


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
