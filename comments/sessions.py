"""Flask's signed-cookie sessions and Flask-WTF's CSRF tokens, with the signatures each
worker verified lately remembered.

Every signed-in request sends its session cookie, and Flask checks the signature (an HMAC),
decodes base64 and tagged JSON, and builds the session from it: for a post, about as much
CPU as its insert. A reader's cookie is the same string from one request to the next until
the session changes, so each worker keeps the sessions of the last few thousand cookies it
verified, keyed by the exact cookie string and the secret keys it was verified with. A hit
is the same bytes that passed the check before; its age is checked again against the
session lifetime on every request, exactly as itsdangerous checks it, so an expired cookie
is refused as before. Only sessions of plain values (strings, numbers, booleans) are kept,
and every request gets a new session object, so nothing a request changes reaches another.

A CSRF token is the same: a signed copy of a value kept in the session, sent by the same
client with every write. Checking it costs another HMAC and a serializer; a token that
verified before under the same secret key is remembered with what it unwraps to and when it
was signed, and every request still compares that with its own session and checks its age,
so a token from another session, or an expired one, is refused exactly as Flask-WTF would.
"""

from __future__ import annotations

import hmac
import logging
import time

from flask import Flask, Request, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect, same_origin
from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer

from .cache import PageCache

_PLAIN = (str, int, float, bool, type(None))


class RememberingSessionInterface(SecureCookieSessionInterface):
    def __init__(self, size: int = 4096) -> None:
        # (cookie, secret keys) -> (when it was signed, the session's items); thread-safe,
        # for gthread workers.
        self._verified = PageCache(size)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        val = request.cookies.get(self.get_cookie_name(app))
        if not val or not app.secret_key:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = (val, app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        hit = self._verified.get(key)
        if hit is not None:
            signed_at, items = hit
            age = int(time.time()) - signed_at
            if 0 <= age <= max_age:
                return self.session_class(items)
            return self.session_class()  # expired (or from the future), as itsdangerous says
        serializer = self.get_signing_serializer(app)
        assert serializer is not None  # there is a secret key
        try:
            data, signed = serializer.loads(val, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(v, _PLAIN) for v in data.values()):
            self._verified.put(key, (int(signed.timestamp()), tuple(data.items())))
        return self.session_class(data)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_csrf_log = logging.getLogger("flask_wtf.csrf")


class RememberingCSRFProtect(CSRFProtect):
    """Flask-WTF's CSRF protection, with the tokens it verified lately remembered (see the
    module's docstring); its checks, messages and errors are Flask-WTF's own."""

    def __init__(self, app: Flask | None = None, size: int = 4096) -> None:
        # (token, secret key, salt) -> (when it was signed, the session value it unwraps to)
        self._verified = PageCache(size)
        super().__init__(app)

    def _get_csrf_token(self) -> str | None:
        # A JSON request has no form to hold a token: don't parse its body for one.
        if request.mimetype not in _FORMS:
            for header_name in current_app.config["WTF_CSRF_HEADERS"]:
                if token := request.headers.get(header_name):
                    return token
            return None
        return super()._get_csrf_token()

    def _validate(self, data: str | None) -> str | None:
        """What flask_wtf.csrf.validate_csrf checks, as its error message; None if valid."""
        config = current_app.config
        secret_key = config.get("WTF_CSRF_SECRET_KEY", current_app.secret_key)
        field_name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        time_limit = config.get("WTF_CSRF_TIME_LIMIT", 3600)
        if secret_key is None:
            raise RuntimeError("A secret key is required to use CSRF.")
        if field_name is None:
            raise RuntimeError("A field name is required to use CSRF.")
        if not data:
            return "The CSRF token is missing."
        if field_name not in session:
            return "The CSRF session token is missing."
        key = (data, secret_key)
        hit = self._verified.get(key)
        if hit is None:
            serializer = URLSafeTimedSerializer(secret_key, salt="wtf-csrf-token")
            try:
                token, signed = serializer.loads(data, max_age=time_limit, return_timestamp=True)
            except SignatureExpired:
                return "The CSRF token has expired."
            except BadData:
                return "The CSRF token is invalid."
            if not isinstance(token, str):
                return "The CSRF token is invalid."
            self._verified.put(key, (int(signed.timestamp()), token))
        else:
            signed_at, token = hit
            age = int(time.time()) - signed_at
            if time_limit is not None and not 0 <= age <= time_limit:
                return "The CSRF token has expired."
        if not hmac.compare_digest(session[field_name], token):
            return "The CSRF tokens do not match."
        return None

    def protect(self, apply_exemptions: bool = False) -> None:
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return
        problem = self._validate(self._get_csrf_token())
        if problem is not None:
            _csrf_log.info(problem)
            self._error_response(problem)
        if request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True  # mark this request as CSRF valid
