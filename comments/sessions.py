"""Flask's signed-cookie sessions, with the cookies it verified lately remembered.

Every signed-in request sends its session cookie, and Flask checks the signature (an HMAC),
decodes base64 and tagged JSON, and builds the session from it: for a post, about as much
CPU as its insert. A reader's cookie is the same string from one request to the next until
the session changes, so each worker keeps the sessions of the last few thousand cookies it
verified, keyed by the exact cookie string and the secret keys it was verified with. A hit
is the same bytes that passed the check before; its age is checked again against the
session lifetime on every request, exactly as itsdangerous checks it, so an expired cookie
is refused as before. Only sessions of plain values (strings, numbers, booleans) are kept,
and every request gets a new session object, so nothing a request changes reaches another.
"""

from __future__ import annotations

import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature

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
