"""Reader pages: server-rendered HTML over the same services as the API.

Plain forms, POST-redirect-GET, flash messages for outcomes. A refused form is rendered
again with what the reader typed (and the reason), never thrown away. Pages that need
moderation (reports, notices, appeals, staff pages) live in ``moderation.views``; they reuse
the helpers here, since moderation may import comments but not the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from . import auth, services
from .errors import ParleyError
from .extensions import db
from .limits import (
    client_address,
    configured,
    limiter,
    posting_limit,
    signin_account,
    user_or_address,
)
from .models import Article, Comment, CommentStatus, Role, User, utcnow
from .screening import get_screener

bp = Blueprint("views", __name__)

F = TypeVar("F", bound=Callable[..., Any])


# ------------------------------------------------------------------------------ helpers


viewer = auth.viewer


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to; anything pointing off-site falls back to ``default``."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def page_role(role: Role | None = None) -> Callable[[F], F]:
    """Pages: send an anonymous visitor to sign in (and back); refuse a lower role with 403.

    ``role=None`` only asks for a signed-in user.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                if request.method == "GET":
                    flash("Sign in to see that page.", "info")
                    return redirect(url_for("views.signin", next=request.full_path.rstrip("?")))
                raise ParleyError("auth_required", "Sign in to do that.", 401)
            if role is not None and not current_user.has_role(role):
                raise ParleyError("forbidden", f"Only a {role.value} can do that.", 403)
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


class FailedForm:
    """A form the server refused: which one, what was typed, and why."""

    def __init__(self, form_id: str, values: dict[str, Any], err: ParleyError) -> None:
        self.form_id = form_id
        self.values = values
        self.message = err.message
        self.code = err.code
        self.fields = err.fields or {}


def refuse(form_id: str, values: dict[str, Any], err: ParleyError) -> int:
    """Remember a refused form for the re-rendered page; returns the status to answer with."""
    db.session.rollback()
    g.failed_form = FailedForm(form_id, values, err)
    return err.status


def _failed() -> FailedForm | None:
    return g.get("failed_form")


def form_value(form_id: str, name: str, default: Any = "") -> Any:
    """What the user typed into ``name`` of ``form_id`` when it was refused, else ``default``."""
    failed = _failed()
    if failed is not None and failed.form_id == form_id:
        value = failed.values.get(name)
        return default if value is None else value
    return default


def form_error(form_id: str) -> FailedForm | None:
    failed = _failed()
    return failed if failed is not None and failed.form_id == form_id else None


def int_arg(name: str, default: int, low: int = 1, high: int = 1_000_000, args: Any = None) -> int:
    """A page's integer query parameter; nonsense falls back to the default."""
    try:
        value = int((request.args if args is None else args).get(name, default))
    except (TypeError, ValueError):
        return default
    return min(max(value, low), high)


def form_int(name: str) -> int | None:
    """An optional whole number from a form; blank is None, anything else non-numeric a 422."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ParleyError(
            "validation_failed", f"'{name}' must be a whole number.", 422, {name: "a number"}
        ) from None


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def when(value: datetime | str | None) -> str:
    """A timestamp for people: 3 May 2026, 14:05 UTC."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value.day} {value:%b %Y, %H:%M} UTC"


def articles_with_counts(page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    """Articles, newest first, each with its published comment count (the article's own
    counter: the front page never counts a thread)."""
    total = db.session.scalar(select(func.count(Article.id))) or 0
    articles = db.session.scalars(
        select(Article)
        .order_by(Article.created_at.desc(), Article.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    site_days = current_app.config["AUTO_CLOSE_DAYS"]
    out = [
        {
            "article": article,
            "comment_count": article.published_count,
            "is_open": article.accepts_comments(site_days),
            "closes_at": article.closes_at(site_days),
        }
        for article in articles
    ]
    return out, total


def pages(page: int, per_page: int, total: int) -> dict[str, Any]:
    last = max(1, -(-total // per_page))
    return {"page": page, "last": last, "total": total, "per_page": per_page}


@bp.app_context_processor
def _context() -> dict[str, Any]:
    return {"viewer": viewer(), "Role": Role}


# Globals rather than context, so that imported macros can use them too.
for _helper in (form_value, form_error, when):
    bp.add_app_template_global(_helper)


# ------------------------------------------------------------------------------ front page


@bp.get("/")
def front_page():
    """Every article, newest first, linking to its thread."""
    page = int_arg("page", 1)
    rows, total = articles_with_counts(page, 30)
    return render_template("front.html", rows=rows, pager=pages(page, 30, total))


# ------------------------------------------------------------------------------ accounts


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_SIGNUP_IP"), key_func=client_address, methods=["POST"])
def signup():
    """Create a reader account and sign in."""
    status = 200
    if request.method == "POST":
        values = {
            "email": request.form.get("email", ""),
            "display_name": request.form.get("display_name", ""),
        }
        try:
            user = auth.create_user(
                values["email"], values["display_name"], request.form.get("password", "")
            )
            db.session.commit()
        except ParleyError as err:
            status = refuse("signup", values, err)
        else:
            auth.start_session(user)
            flash(f"Welcome, {user.display_name}. You are signed in.", "success")
            return redirect(safe_next(request.form.get("next")))
    return render_template("signup.html", next=request.values.get("next", "")), status


@bp.route("/signin", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_SIGNIN_IP"), key_func=client_address, methods=["POST"])
@limiter.limit(configured("RATELIMIT_SIGNIN_ACCOUNT"), key_func=signin_account, methods=["POST"])
def signin():
    """Sign in with email and password."""
    status = 200
    if request.method == "POST":
        email = request.form.get("email", "")
        user = auth.authenticate(email, request.form.get("password", ""))
        if user is not None:
            auth.start_session(user)
            flash(f"Signed in as {user.display_name}.", "success")
            return redirect(safe_next(request.form.get("next")))
        # One answer for an unknown email and a wrong password: no account enumeration.
        status = refuse(
            "signin",
            {"email": email},
            ParleyError("invalid_credentials", "That email and password don't match.", 401),
        )
    return render_template("signin.html", next=request.values.get("next", "")), status


@bp.post("/signout")
def signout():
    auth.end_session()
    flash("You have signed out.", "success")
    return redirect(url_for("views.front_page"))


# ------------------------------------------------------------------------------ threads

SORT_LABELS = {"oldest": "Oldest first", "newest": "Newest first", "replies": "Most replies"}


def _can_edit(node: dict[str, Any], user: User | None, open_: bool) -> bool:
    if user is None or not open_ or node["author"] is None or node["author"]["id"] != user.id:
        return False
    if node["status"] not in ("published", "pending"):
        return False
    window = timedelta(minutes=current_app.config["EDIT_WINDOW_MINUTES"])
    created = parse_time(node["created_at"])
    return created is not None and utcnow() - created <= window


def _decorate(nodes: list[dict[str, Any]], user: User | None, open_: bool) -> None:
    """Add what the template needs to decide which forms each comment gets."""
    for node in nodes:
        full = node.get("placeholder") is None
        mine = full and user is not None and node["author"] and node["author"]["id"] == user.id
        node["mine"] = bool(mine)
        node["can_edit"] = full and _can_edit(node, user, open_)
        node["can_delete"] = bool(mine) and node["status"] in ("published", "pending")
        # Replies hang under published comments, or under your own held one.
        node["can_reply"] = full and open_ and (node["status"] == "published" or bool(mine))
        node["can_report"] = full and not mine and node["status"] == "published"
        _decorate(node["replies"], user, open_)


def posting_refusal(article: Article, user: User | None) -> str | None:
    """Why this user can't post here right now (suspended, banned), or None."""
    if user is None:
        return None
    try:
        get_screener().check_author(user, article)
    except ParleyError as err:
        return err.message
    return None


def render_thread(
    article: Article,
    template: str = "thread.html",
    status: int = 200,
    args: MultiDict[str, str] | None = None,
) -> Any:
    """The thread page (or the demo story page embedding it) for the current reader."""
    user = viewer()
    args = request.args if args is None else args
    page = int_arg("page", 1, args=args)
    per_page = int_arg(
        "per_page",
        current_app.config["PER_PAGE_DEFAULT"],
        1,
        current_app.config["PER_PAGE_MAX"],
        args=args,
    )
    sort = args.get("sort", "oldest")
    if sort not in services.SORTS:
        sort = "oldest"
    thread = services.read_thread(article, user, page, per_page, sort)
    open_ = thread["article"]["is_open"]
    _decorate(thread["comments"], user, open_)
    html = render_template(
        template,
        article=article,
        info=thread["article"],
        thread=thread,
        sort=sort,
        sorts=SORT_LABELS,
        pager=pages(page, per_page, thread["total_top_level"]),
        is_open=open_,
        closed_message=services.THREAD_CLOSED_MESSAGE,
        cannot_post=posting_refusal(article, user),
        here=request.full_path.rstrip("?")
        if request.method == "GET"
        else safe_next(request.form.get("next"), url_for("views.thread", key=article.key)),
        edit_minutes=current_app.config["EDIT_WINDOW_MINUTES"],
        max_length=current_app.config["COMMENT_MAX_LENGTH"],
    )
    return html, status


def back_to_thread(article: Article, anchor: str | None = None) -> Any:
    """Where a thread form returns: the page it was sent from (thread or demo), else the thread."""
    target = safe_next(request.form.get("next"), url_for("views.thread", key=article.key))
    return redirect(target + (f"#{anchor}" if anchor else ""))


def rerender_thread(article: Article, status: int) -> Any:
    """Render the page a thread form came from again, keeping the reader's text."""
    target = safe_next(request.form.get("next"), "")
    template = "demo.html" if target.startswith("/demo/") else "thread.html"
    # Keep the page and sort the reader was on.
    args = MultiDict(parse_qsl(urlsplit(target).query))
    return render_thread(article, template, status, args)


@bp.get("/articles/<key>")
def thread(key: str):
    """An article's comment thread."""
    return render_thread(services.get_article(key))


@bp.get("/demo/<key>")
def demo(key: str):
    """A newsroom story page with the thread embedded under it, as a site would show it."""
    return render_thread(services.get_article(key), "demo.html")


@bp.post("/articles/<key>/comments")
@limiter.limit(posting_limit, key_func=user_or_address)
@limiter.limit(configured("RATELIMIT_POST_IP"), key_func=client_address)
@page_role()
def post_comment(key: str):
    """Post a comment, or a reply when parent_id is given."""
    article = services.get_article(key)
    body = request.form.get("body", "")
    raw_parent = request.form.get("parent_id") or None
    form_id = f"reply-{raw_parent}" if raw_parent else "comment"
    try:
        parent_id = int(raw_parent) if raw_parent else None
        comment = services.post_comment(article, current_user, body, parent_id, commit=True)
    except ValueError:
        err = ParleyError("invalid_parent", "That is not a comment to reply to.", 422)
        return rerender_thread(article, refuse(form_id, {"body": body}, err))
    except ParleyError as err:
        return rerender_thread(article, refuse(form_id, {"body": body}, err))
    if comment.status == CommentStatus.PENDING:
        flash(
            "Thanks. Your comment is awaiting review by a moderator; only you can see it "
            "until then.",
            "info",
        )
    else:
        flash("Your comment is published.", "success")
    return back_to_thread(article, f"c{comment.id}")


def _own_comment(comment_id: int) -> Comment:
    comment = services.get_comment(comment_id)
    if comment.author_id != current_user.id:
        raise ParleyError("not_author", "Only its author can change a comment.", 403)
    return comment


@bp.post("/comments/<int:comment_id>/edit")
@limiter.limit(posting_limit, key_func=user_or_address)
@page_role()
def edit_comment(comment_id: int):
    """Rewrite your own comment within the edit window."""
    comment = _own_comment(comment_id)
    article = comment.article
    body = request.form.get("body", "")
    try:
        services.edit_comment(comment, current_user, body)
        db.session.commit()
    except ParleyError as err:
        return rerender_thread(article, refuse(f"edit-{comment_id}", {"body": body}, err))
    if comment.status == CommentStatus.PENDING:
        flash("Your edit is saved and awaiting review by a moderator.", "info")
    else:
        flash("Your edit is saved.", "success")
    return back_to_thread(article, f"c{comment_id}")


@bp.post("/comments/<int:comment_id>/delete")
@page_role()
def delete_comment(comment_id: int):
    """Delete your own comment; replies under it stay, under a placeholder."""
    comment = _own_comment(comment_id)
    article = comment.article
    try:
        services.delete_comment(comment, current_user)
        db.session.commit()
    except ParleyError as err:
        db.session.rollback()
        flash(err.message, "error")
        return back_to_thread(article, f"c{comment_id}")
    flash("Your comment is deleted.", "success")
    return back_to_thread(article)
