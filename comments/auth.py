"""Accounts and sessions: argon2 password hashes, Flask-Login, role checks."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app, request, session
from flask_login import current_user, login_user, logout_user
from sqlalchemy import bindparam, select, update

from .errors import ParleyError
from .extensions import db, login_manager
from .models import Role, User
from .services import read_poster

_HASHERS: dict[str, tuple[PasswordHasher, str]] = {}


def _hasher() -> tuple[PasswordHasher, str]:
    """The argon2 hasher for this app, and a hash of a dummy password made with it.

    The dummy hash is verified when an email is unknown, so both sign-in failures cost the
    same. Tests use a cheap profile (ARGON2_PROFILE = "fast"); sites use argon2-cffi's
    defaults (RFC 9106 low-memory).
    """
    profile = current_app.config.get("ARGON2_PROFILE", "default")
    if profile not in _HASHERS:
        hasher = (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if profile == "fast"
            else PasswordHasher()
        )
        _HASHERS[profile] = (hasher, hasher.hash("parley-dummy-password"))
    return _HASHERS[profile]


PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 is deliberately slow; don't let a megabyte password be hashed
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# Control, format (zero-width, bidi overrides), unassigned, private-use, surrogates, separators.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"}


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; always spends one argon2 verification."""
    hasher, dummy = _hasher()
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise ParleyError(
            "invalid_email", "That is not a valid email address.", 422, {"email": "invalid"}
        )
    return email


def display_name_key(name: str) -> str:
    """The form two display names are compared in: "Ann" and "ＡＮＮ" collide."""
    return unicodedata.normalize("NFKC", name).casefold()


def check_display_name(name: str) -> str:
    name = name.strip()
    if not 2 <= len(name) <= 40:
        raise ParleyError(
            "invalid_display_name",
            "A display name is 2 to 40 characters.",
            422,
            {"display_name": "2 to 40 characters"},
        )
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        raise ParleyError(
            "invalid_display_name",
            "A display name cannot contain control or invisible characters.",
            422,
            {"display_name": "control or invisible characters"},
        )
    return name


def check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ParleyError(
            "weak_password",
            f"A password is {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
            422,
            {"password": f"{PASSWORD_MIN} to {PASSWORD_MAX} characters"},
        )


def create_user(email: str, display_name: str, password: str, role: Role = Role.READER) -> User:
    """Add a new account (flushes, does not commit). Refuses a taken email or name."""
    email = normalise_email(email)
    display_name = check_display_name(display_name)
    check_password(password)
    key = display_name_key(display_name)
    if db.session.scalar(db.select(User.id).where(User.email == email)) is not None:
        raise ParleyError(
            "email_taken", "An account with that email already exists.", 409, {"email": "taken"}
        )
    if db.session.scalar(db.select(User.id).where(User.display_name_key == key)) is not None:
        raise ParleyError(
            "display_name_taken",
            "That display name is taken.",
            409,
            {"display_name": "taken"},
        )
    user = User(
        email=email,
        display_name=display_name,
        display_name_key=key,
        password_hash=hash_password(password),
        role=role,
    )
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user with these credentials, or None; the same work whether or not the email exists."""
    try:
        email = normalise_email(email)
    except ParleyError:
        email = ""
    user = db.session.scalar(db.select(User).where(User.email == email)) if email else None
    ok = verify_password(user.password_hash if user else None, password[:PASSWORD_MAX])
    return user if ok and user is not None else None


def start_session(user: User) -> None:
    """Sign in with a fresh session: nothing from before sign-in survives (no fixation)."""
    session.clear()
    login_user(user)


def viewer() -> User | None:
    """The signed-in user, or None for an anonymous reader.

    The real object, not Flask-Login's proxy: services hand it to the ORM."""
    return current_user._get_current_object() if current_user.is_authenticated else None


def end_other_sessions(user: User) -> None:
    """Invalidate every session of this user (flushes): their cookies name an old version."""
    db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(user)


def end_session() -> None:
    """Sign out here and everywhere else this user is signed in."""
    if current_user.is_authenticated:
        end_other_sessions(current_user._get_current_object())
        db.session.commit()
    logout_user()
    session.clear()


def change_password(user: User, current: str, new: str) -> None:
    """Set a new password (flushes); every other session of the user ends."""
    if not verify_password(user.password_hash, current[:PASSWORD_MAX]):
        raise ParleyError(
            "invalid_credentials",
            "Your current password is not right.",
            403,
            {"current_password": "wrong"},
        )
    check_password(new)
    user.password_hash = hash_password(new)
    end_other_sessions(user)


F = TypeVar("F", bound=Callable[..., Any])


def require_role(role: Role) -> Callable[[F], F]:
    """Refuse anonymous callers with 401 and signed-in callers below ``role`` with 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                raise ParleyError("auth_required", "Sign in to do that.", 401)
            if not current_user.has_role(role):
                raise ParleyError("forbidden", f"Only a {role.value} can do that.", 403)
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


# Every signed-in request loads its user: a prebuilt select is ~50 us cheaper than
# Session.get building one on each request's empty identity map.
_USER_BY_ID = select(User).where(User.id == bindparam("id"))

# Some requests read a row of their own before anything else: a post its article and the
# author's recent posts (services.read_poster), a moderator's decision or a report its
# comment (services.read_user_with_comment, registered by moderation). Each is read with the
# signed-in user, in one statement (a statement costs ~100 us in SQLAlchemy, and on
# PostgreSQL a round trip). The user is loaded by whatever asks first (the rate limiter
# when limits are on, a role check, the view), so it is done here.
# Endpoint -> (the view argument it needs, the reader).
WITH_USER: dict[str, tuple[str, Callable[[int, Any], User | None]]] = {
    "api.post_comment": ("key", read_poster),
}


def read_with_user(endpoint: str, view_arg: str, reader: Callable[[int, Any], User | None]):
    """Have the user loader call ``reader(user_id, view_args[view_arg])`` for ``endpoint``
    instead of reading the user alone; the reader returns the user (or None)."""
    WITH_USER[endpoint] = (view_arg, reader)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    # Our own session handling: a changed session_version is how sessions end.
    login_manager.session_protection = None

    @login_manager.user_loader
    def load_user(token: str) -> User | None:
        user_id, _, version = token.partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        reads = WITH_USER.get(request.endpoint or "")
        value = request.view_args.get(reads[0]) if reads and request.view_args else None
        if value is not None:
            user = reads[1](int(user_id), value)
        else:
            user = db.session.scalar(_USER_BY_ID, {"id": int(user_id)})
        if user is None or user.session_version != int(version):
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized() -> Any:
        raise ParleyError("auth_required", "Sign in to do that.", 401)
