"""One error shape everywhere: ``{"error": {"code", "message", "fields"?}}``.

Services raise :class:`ParleyError` with a stable code; the HTTP layer turns it, and every
HTTP error Flask or an extension raises, into that shape.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .extensions import db


class ParleyError(Exception):
    """A refusal the user caused, with a stable machine-readable code."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        fields: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields
        self.extra = extra or {}


def not_found(what: str) -> ParleyError:
    return ParleyError("not_found", f"No such {what}.", 404)


# Codes for errors raised by Flask, Werkzeug and extensions rather than by our services.
_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Sign in to do that."),
    403: ("forbidden", "You are not allowed to do that."),
    404: ("not_found", "Nothing is here."),
    405: ("method_not_allowed", "That method is not allowed here."),
    413: ("body_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send JSON with Content-Type: application/json."),
    429: ("rate_limited", "Too many requests; try again later."),
}


def wants_html() -> bool:
    """Pages get an HTML error page; the API (and any JSON client) gets the JSON shape."""
    if request.path.startswith("/api/"):
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "text/html"


def error_response(
    code: str,
    message: str,
    status: int,
    fields: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Response, int]:
    if wants_html():
        from flask import render_template

        html = render_template(
            "error.html", code=code, message=message, status=status, fields=fields or {}
        )
        return Response(html, status=status, mimetype="text/html"), status
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    payload: dict[str, Any] = {"error": body}
    if extra:
        payload.update(extra)
    return jsonify(payload), status


def init_app(app: Flask) -> None:
    @app.errorhandler(ParleyError)
    def _parley_error(err: ParleyError):
        db.session.rollback()
        return error_response(err.code, err.message, err.status, err.fields, err.extra)

    @app.errorhandler(CSRFError)
    def _csrf_error(err: CSRFError):
        return error_response(
            "csrf_failed",
            "Missing or invalid CSRF token: get one from GET /api/v1/auth/session and send it "
            "in the X-CSRFToken header.",
            400,
        )

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        code, message = _HTTP_CODES.get(status, ("http_error", err.description or ""))
        response, status = error_response(code, message, status)
        # Keep headers such as Allow (405) or Retry-After (429).
        for key, value in err.get_headers():
            if key.lower() != "content-type":
                response.headers[key] = value
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        # Nothing half-written: whatever the request did is rolled back.
        db.session.rollback()
        current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response("internal_error", "Something went wrong on our side.", 500)
