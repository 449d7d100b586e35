"""Abuse limits: how often one person or one address may post, report, sign in and sign up.

Counters live in Redis when PARLEY_REDIS_URL is set (shared by every worker and machine),
in memory otherwise. A limited request gets 429 with Retry-After. The client address is
what the configured number of trusted proxies says (ProxyFix), never a header a client sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from .models import utcnow


def client_address() -> str:
    return request.remote_addr or "unknown"


def user_or_address() -> str:
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"ip:{client_address()}"


def signin_account() -> str:
    """The account a sign-in is for, read from the body without trusting its shape."""
    try:
        data = json.loads(request.get_data(cache=True) or b"{}")
        email = data.get("email") if isinstance(data, dict) else None
    except ValueError:
        email = None
    if not isinstance(email, str):
        email = request.form.get("email", "")
    return "account:" + email.strip().lower()[:254]


limiter = Limiter(key_func=client_address)


def configured(name: str) -> Callable[[], str]:
    """A limit read from config at request time, so sites (and tests) can change it."""
    return lambda: current_app.config[name]


def posting_limit() -> str:
    """Accounts younger than a day get the stricter posting limit."""
    young = current_user.is_authenticated and utcnow() - current_user.created_at < timedelta(days=1)
    return current_app.config["RATELIMIT_POST_NEW_USER" if young else "RATELIMIT_POST_USER"]


def init_app(app: Flask) -> None:
    hops = int(app.config["PROXY_FIX_X_FOR"])
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    if app.config.get("REDIS_URL"):
        app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)
