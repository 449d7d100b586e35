"""The JSON API under /api/v1 for readers and a newsroom's own front end: thin handlers that
parse, call a service, commit once and shape the answer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from . import auth, openapi, services
from .cache import page_cache
from .errors import ParleyError
from .extensions import db
from .fastread import ENVIRON_KEY
from .limits import (
    client_address,
    configured,
    limiter,
    posting_limit,
    signin_account,
    user_or_address,
)
from .models import Article, Role, User
from .validation import Field, query_choice, query_int, read_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")


viewer = auth.viewer


def signed_in() -> User:
    user = viewer()
    if user is None:
        raise ParleyError("auth_required", "Sign in to do that.", 401)
    return user


# ------------------------------------------------------------------------------ auth

SIGNUP = {
    "email": Field(str, max_length=254),
    "display_name": Field(str, max_length=200),
    "password": Field(str, max_length=auth.PASSWORD_MAX),
}
SIGNIN = {
    "email": Field(str, max_length=254),
    "password": Field(str, max_length=auth.PASSWORD_MAX),
}


@bp.post("/auth/signup")
@limiter.limit(configured("RATELIMIT_SIGNUP_IP"), key_func=client_address)
@openapi.body(SIGNUP)
def signup():
    """Create a reader account and sign in."""
    data = read_json(SIGNUP)
    user = auth.create_user(data["email"], data["display_name"], data["password"])
    db.session.commit()
    auth.start_session(user)
    return jsonify(user=user.to_private(), csrf_token=generate_csrf()), 201


@bp.post("/auth/signin")
@limiter.limit(configured("RATELIMIT_SIGNIN_IP"), key_func=client_address)
@limiter.limit(configured("RATELIMIT_SIGNIN_ACCOUNT"), key_func=signin_account)
@openapi.body(SIGNIN)
def signin():
    """Sign in with email and password."""
    data = read_json(SIGNIN)
    user = auth.authenticate(data["email"], data["password"])
    if user is None:
        # One answer for an unknown email and a wrong password: no account enumeration.
        raise ParleyError("invalid_credentials", "That email and password don't match.", 401)
    auth.start_session(user)
    return jsonify(user=user.to_private(), csrf_token=generate_csrf())


@bp.post("/auth/signout")
def signout():
    """Sign out, ending this user's sessions everywhere."""
    auth.end_session()
    return Response(status=204)


PASSWORD_CHANGE = {
    "current_password": Field(str, max_length=auth.PASSWORD_MAX),
    "new_password": Field(str, max_length=auth.PASSWORD_MAX),
}


@bp.post("/auth/password")
@limiter.limit(configured("RATELIMIT_SIGNIN_ACCOUNT"), key_func=user_or_address)
@openapi.body(PASSWORD_CHANGE)
def change_password():
    """Change your password; your other sessions end, this one continues."""
    user = signed_in()
    data = read_json(PASSWORD_CHANGE)
    auth.change_password(user, data["current_password"], data["new_password"])
    db.session.commit()
    auth.start_session(user)
    return jsonify(user=user.to_private(), csrf_token=generate_csrf())


@bp.get("/auth/session")
def session_info():
    """The signed-in user (or null) and a CSRF token for state-changing requests."""
    user = viewer()
    return jsonify(user=user.to_private() if user else None, csrf_token=generate_csrf())


@bp.get("/openapi.json")
def openapi_document():
    """This API as an OpenAPI 3 document."""
    return jsonify(openapi.build(current_app))


# ------------------------------------------------------------------------------ articles

NEW_ARTICLE = {
    "key": Field(str, max_length=200),
    "title": Field(str, max_length=300),
    "url": Field(str, max_length=2000),
    "auto_close_days": Field(int, required=False, nullable=True),
}


@bp.post("/articles")
@auth.require_role(Role.EDITOR)
@openapi.body(NEW_ARTICLE)
def create_article():
    """Register an article for comments (editors)."""
    data = read_json(NEW_ARTICLE)
    article = services.create_article(
        data["key"], data["title"], data["url"], data.get("auto_close_days"), current_user
    )
    db.session.commit()
    return jsonify(article=services.article_json(article)), 201


@bp.get("/articles/<key>")
def get_article(key: str):
    """An article: key, title, url, whether it is open, and its published comment count."""
    article = services.get_article(key)
    return jsonify(article=services.article_json(article))


@bp.get("/articles/<key>/comments")
def read_thread(key: str):
    """The thread: a page of top-level comments, each with its replies nested."""
    # The fast path (comments/fastread.py) hands over the row it looked up, so the page is
    # rendered from the version its cache key names.
    header = request.environ.get(ENVIRON_KEY) or services.thread_header(key)
    page = query_int("page", 1, 1, services.PAGE_MAX)
    per_page = query_int(
        "per_page", current_app.config["PER_PAGE_DEFAULT"], 1, current_app.config["PER_PAGE_MAX"]
    )
    sort = query_choice("sort", services.SORTS, "oldest")
    user = viewer()
    is_open = services.accepts_comments(header)  # an automatic close changes the page too
    etag = services.thread_etag(header, user, page, per_page, sort, is_open)
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        # The key holds the article's version from the database: any change on any worker
        # makes a new key, so a cached page is never stale.
        cache_key = (header.id, header.version, is_open, user.id if user else 0, page, per_page,
                     sort)  # fmt: skip
        body = page_cache().get(cache_key)
        shown_to = user
        if body is None and user is not None and services.sees_what_everyone_sees(header, user):
            # A signed-in reader with no comment in the thread: everyone's page, so that
            # after each change one render serves them all (signed in or not).
            shown_to, cache_key = None, (*cache_key[:3], 0, *cache_key[4:])
            body = page_cache().get(cache_key)
        if body is None:
            article = db.session.get(Article, header.id)
            thread = services.read_thread(article, shown_to, page, per_page, sort)
            body = current_app.json.dumps(thread).encode()
            page_cache().put(cache_key, body)
        response = Response(body, mimetype="application/json")
    response.set_etag(etag, weak=True)
    # Signed-in readers see their own held comments: never let a shared cache keep that.
    response.headers["Cache-Control"] = "private, no-cache" if user else "public, no-cache"
    response.vary.add("Cookie")
    return response


NEW_COMMENT = {
    "body": Field(str, max_length=1_000_000),
    "parent_id": Field(int, required=False, nullable=True),
}


@bp.post("/articles/<key>/comments")
@limiter.limit(posting_limit, key_func=user_or_address)
@limiter.limit(configured("RATELIMIT_POST_IP"), key_func=client_address)
@openapi.body(NEW_COMMENT)
def post_comment(key: str):
    """Post a comment or a reply: 201 when published, 202 when held for review."""
    user = signed_in()
    data = read_json(NEW_COMMENT)
    article, recent = services.posting_context(user, key)
    comment = services.post_comment(
        article, user, data["body"], data.get("parent_id"), commit=True, recent=recent
    )
    status = 201 if comment.status.value == "published" else 202
    return jsonify(comment=services.comment_json(comment, user)), status


# ------------------------------------------------------------------------------ comments


def _visible_comment(comment_id: int):
    comment = services.get_comment(comment_id)
    user = viewer()
    if comment.status.value in ("pending", "withdrawn") and not services.can_see(comment, user):
        raise ParleyError("not_found", "No such comment.", 404)
    return comment, user


@bp.get("/comments/<int:comment_id>")
def get_comment(comment_id: int):
    """One comment; a held or withdrawn one only to its author and moderators."""
    comment, user = _visible_comment(comment_id)
    full = services.can_see(comment, user)
    return jsonify(comment=services.comment_json(comment, user, full))


EDIT = {"body": Field(str, max_length=1_000_000)}


@bp.patch("/comments/<int:comment_id>")
@limiter.limit(posting_limit, key_func=user_or_address)
@openapi.body(EDIT)
def edit_comment(comment_id: int):
    """Rewrite your own comment within the edit window."""
    user = signed_in()
    data = read_json(EDIT)
    comment = services.get_comment(comment_id)
    services.edit_comment(comment, user, data["body"])
    db.session.commit()
    return jsonify(comment=services.comment_json(comment, user))


@bp.delete("/comments/<int:comment_id>")
def delete_comment(comment_id: int):
    """Delete your own comment; replies to it stay under a placeholder."""
    user = signed_in()
    comment = services.get_comment(comment_id)
    services.delete_comment(comment, user)
    db.session.commit()
    return Response(status=204)
