"""Security headers on every response, and CORS for the newsroom origins a site configures."""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, g, request


def csp_nonce() -> str:
    """A per-response nonce: the only inline script a page may run carries it."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _frame_ancestors() -> str:
    return " ".join(["'self'", *current_app.config["FRAME_ANCESTORS"]])


def content_security_policy() -> str:
    ancestors = _frame_ancestors()
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{csp_nonce()}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        ]
    )


def data_security_policy() -> str:
    """For everything that is not a page (JSON, CSV, 304s): nothing may load or run, and no
    nonce, since nothing here runs a script (and a cached response can be replayed as is)."""
    return f"default-src 'none'; frame-ancestors {_frame_ancestors()}"


def _headers(response: Response) -> Response:
    headers = response.headers
    present = {name.lower() for name, _value in headers.items()}

    def default(name: str, value: str) -> None:
        # Not Headers.setdefault: Werkzeug's raises and catches a KeyError per missing header.
        if name.lower() not in present:
            headers[name] = value

    if "content-security-policy" not in present:
        page = response.mimetype == "text/html" and response.status_code != 304
        headers["Content-Security-Policy"] = (
            content_security_policy() if page else data_security_policy()
        )
    default("X-Content-Type-Options", "nosniff")
    default("Referrer-Policy", "strict-origin-when-cross-origin")
    default("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config["ENV"] == "production":
        default("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    origin = request.headers.get("Origin")
    if origin and request.path.startswith("/api/") and origin in current_app.config["CORS_ORIGINS"]:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Expose-Headers"] = "ETag, Retry-After"
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
            headers["Access-Control-Allow-Headers"] = "Content-Type, X-CSRFToken, If-None-Match"
            headers["Access-Control-Max-Age"] = "600"
    if request.path.startswith("/api/"):
        response.vary.add("Origin")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
