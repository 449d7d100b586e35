"""The server-rendered pages: readers, moderators and editors, through Flask's test client.

Forms are posted the way a browser posts them (form-encoded, with the CSRF token the page
rendered). Each test checks what a person would notice: the page, the message, that what
they typed is still there when a form is refused, and that staff pages refuse the wrong role.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from comments.extensions import db
from comments.models import Comment, CommentStatus, Role, User
from tests.conftest import PASSWORD

HOSTILE_NAME = '<script>alert("name")</script>'
HOSTILE_TITLE = '<img src=x onerror=alert("title")>'


class Browser:
    """A test client that fills in forms: it takes the CSRF token from a rendered page."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def token(self) -> str:
        return self.client.get("/api/v1/auth/session").get_json()["csrf_token"]

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        form = {"csrf_token": self.token(), **(data or {})}
        return self.client.post(path, data=form, **kw)

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


@pytest.fixture
def browser(app: Flask):
    """A browser signed in as a new user: browser("Ann", Role.MODERATOR)."""

    def make(name: str | None = None, role: Role = Role.READER) -> Browser:
        b = Browser(app.test_client())
        if name is not None:
            from comments import auth

            with app.app_context():
                auth.create_user(f"{_slug(name)}@example.com", name, PASSWORD, role)
                db.session.commit()
            response = b.post(
                "/signin", {"email": f"{_slug(name)}@example.com", "password": PASSWORD}
            )
            assert response.status_code == 302, response.get_data(as_text=True)
        return b

    return make


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower()) or "user"


def _comment_id(response: Any) -> int:
    match = re.search(r"#c(\d+)$", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def _post(b: Browser, key: str, body: str, parent_id: int | None = None) -> int:
    data = {"body": body, "next": f"/articles/{key}"}
    if parent_id is not None:
        data["parent_id"] = str(parent_id)
    response = b.post(f"/articles/{key}/comments", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return _comment_id(response)


def _status(app: Flask, comment_id: int) -> CommentStatus:
    with app.app_context():
        return db.session.get(Comment, comment_id).status


# ------------------------------------------------------------------------------ readers


def test_front_page_lists_articles_and_escapes_titles(app, browser, article) -> None:
    from comments import services

    with app.app_context():
        services.create_article("hostile", HOSTILE_TITLE, "https://news.example/h")
        db.session.commit()
    html = browser().text("/")
    assert 'href="/articles/durham-jobs"' in html
    assert "Jobs move from Durham" in html
    assert HOSTILE_TITLE not in html
    assert "&lt;img src=x onerror=alert(&#34;title&#34;)&gt;" in html


def test_thread_for_anonymous_reader_asks_to_sign_in_and_links_rules(browser, article) -> None:
    html = browser().text(f"/articles/{article}")
    assert "<h1>" in html and html.count("<h1") == 1
    assert 'href="/signin?next=/articles/durham-jobs"' in html
    assert '<a href="/rules">Read the rules here</a>' in html
    assert "<textarea" not in html


def test_pages_keep_to_the_content_security_policy(browser, article) -> None:
    b = browser("Ann")
    _post(b, article, "A reply-worthy point.")
    for path in ("/", f"/articles/{article}", f"/demo/{article}", "/signin", "/me/notices"):
        html = b.text(path)
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\son[a-z]+=", html), path


def test_signup_signs_in_and_returns_to_the_thread(browser, article) -> None:
    b = browser()
    response = b.post(
        "/signup",
        {
            "email": "new@example.com",
            "display_name": "Newcomer",
            "password": PASSWORD,
            "next": f"/articles/{article}",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/articles/{article}"
    html = b.text(f"/articles/{article}")
    assert "Newcomer" in html and 'id="comment-body"' in html


def test_signup_refused_keeps_what_was_typed(browser) -> None:
    b = browser()
    response = b.post(
        "/signup", {"email": "keep@example.com", "display_name": "Keeper", "password": "short"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "A password is 10 to 1024 characters." in html
    assert 'value="keep@example.com"' in html and 'value="Keeper"' in html
    assert "short" not in html  # passwords are never echoed


def test_signin_failure_keeps_email_and_next_is_local_only(browser, make_user) -> None:
    make_user("Bea")
    b = browser()
    response = b.post("/signin", {"email": "bea@example.com", "password": "wrong password!"})
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert "That email and password don&#39;t match." in html
    assert 'value="bea@example.com"' in html
    response = b.post(
        "/signin",
        {"email": "bea@example.com", "password": PASSWORD, "next": "//evil.example/x"},
    )
    assert response.headers["Location"] == "/"


def test_sign_out(browser) -> None:
    b = browser("Cat")
    assert b.post("/signout").status_code == 302
    assert b.get("/me/comments").status_code == 302  # off to sign in


def test_post_reply_edit_and_delete_own_comment(app, browser, article) -> None:
    ann, bob = browser("Ann"), browser("Bob")
    first = _post(ann, article, "Durham will miss these jobs.")
    reply = _post(bob, article, "It will, and soon.", parent_id=first)
    html = ann.text(f"/articles/{article}")
    assert "Durham will miss these jobs." in html and "It will, and soon." in html
    assert 'class="replies"' in html
    assert html.index("Durham will miss") < html.index("It will, and soon.")

    response = ann.post(
        f"/comments/{first}/edit", {"body": "Durham will miss these jobs badly.", "next": "/x"}
    )
    assert response.status_code == 302
    assert "Durham will miss these jobs badly." in ann.text(f"/articles/{article}")
    # Someone else's comment: refused on the server, whatever the page shows.
    assert ann.post(f"/comments/{reply}/edit", {"body": "mine now"}).status_code == 403
    assert ann.post(f"/comments/{reply}/delete").status_code == 403

    assert ann.post(f"/comments/{first}/delete").status_code == 302
    html = bob.text(f"/articles/{article}")
    assert "This comment was deleted by its author" in html
    assert "It will, and soon." in html


def test_refused_comment_and_reply_keep_the_text(app, browser, article) -> None:
    app.config["COMMENT_MAX_LENGTH"] = 40
    b = browser("Dan")
    long_text = "A long argument about the Durham office " * 3
    response = b.post(
        f"/articles/{article}/comments", {"body": long_text, "next": f"/articles/{article}"}
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "A comment is at most 40 characters" in html
    assert long_text.strip() in html  # inside the textarea, escaped by Jinja

    first = _post(b, article, "Short and sweet.")
    response = b.post(
        f"/articles/{article}/comments",
        {"body": "   ", "parent_id": str(first), "next": f"/demo/{article}"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Write something first." in html
    assert '<details class="action" open>' in html  # the reply form is open again
    assert "Comments: Our rules" in html  # and it is the demo page it came from


def test_closed_thread_replaces_the_forms(app, browser, make_user, article) -> None:
    from comments import services
    from moderation import services as mod

    ann = browser("Ann")
    first = _post(ann, article, "Before the close.")
    editor_id = make_user("Ed", Role.EDITOR)
    with app.app_context():
        mod.set_thread_open(db.session.get(User, editor_id), services.get_article(article), False)
        db.session.commit()
    html = ann.text(f"/articles/{article}")
    assert "Comments are closed on this article" in html
    assert "<textarea" not in html
    assert 'id="comment-body"' not in html and f'id="reply-{first}' not in html
    response = ann.post(
        f"/articles/{article}/comments", {"body": "After the close.", "next": "/articles/x"}
    )
    assert response.status_code == 403
    assert "After the close." in response.get_data(as_text=True)


def test_hostile_display_name_is_escaped_everywhere(app, browser, article) -> None:
    evil = browser(HOSTILE_NAME)
    comment = _post(evil, article, "<b>bold</b> <script>alert(1)</script> text")
    mod = browser("Mo", Role.MODERATOR)
    reader = browser("Rae")
    reader.post(f"/comments/{comment}/report", {"rule": "civil", "note": "<i>rude</i>"})
    for b, path in (
        (reader, f"/articles/{article}"),
        (reader, f"/demo/{article}"),
        (mod, "/moderation/queue/reported"),
        (mod, "/moderation/users/1"),
    ):
        html = b.text(path)
        assert HOSTILE_NAME not in html, path
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in html, path
    thread_html = reader.text(f"/articles/{article}")
    assert "<b>bold</b>" in thread_html  # the sanitised body keeps allowed markup
    assert "&lt;i&gt;rude&lt;/i&gt;" in mod.text("/moderation/queue/reported")


def test_hostile_rule_title_is_escaped(app, browser, article) -> None:
    from moderation import services as mod

    editor = browser("Edna", Role.EDITOR)
    response = editor.post(
        "/editor/rules",
        {"code": "odd", "title": HOSTILE_TITLE, "text": "A rule with a <b>title</b>."},
    )
    assert response.status_code == 302
    with app.app_context():
        assert mod.get_rule("odd").title == HOSTILE_TITLE
    poster = browser("Pat")
    _post(poster, article, "Reportable.")
    for b, path in (
        (editor, "/rules"),
        (editor, "/editor/rules"),
        (browser("Rex"), f"/articles/{article}"),
    ):
        html = b.text(path)
        assert HOSTILE_TITLE not in html, path
        assert "&lt;img src=x onerror=alert(&#34;title&#34;)&gt;" in html, path


def test_report_with_a_rule_and_refusal_keeps_the_note(app, browser, article) -> None:
    ann, bob = browser("Ann"), browser("Bob")
    comment = _post(ann, article, "Something contentious.")
    html = bob.text(f"/articles/{article}")
    assert f'id="report-{comment}-rule"' in html and '<option value="civil">' in html
    response = bob.post(f"/comments/{comment}/report", {"rule": "", "note": "See the second line"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Cite the house rule." in html and "See the second line" in html
    response = bob.post(
        f"/comments/{comment}/report",
        {"rule": "civil", "note": "rude", "next": f"/articles/{article}"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/articles/{article}#c{comment}"
    assert "Waiting for a moderator" in bob.text("/me/reports")
    # Not your own comment:
    response = ann.post(f"/comments/{comment}/report", {"rule": "civil"})
    assert response.status_code == 403


# ------------------------------------------------------------------------ moderation


def test_staff_pages_refuse_readers_and_send_strangers_to_sign_in(browser, article) -> None:
    stranger, reader = browser(), browser("Ria")
    moderator = browser("Moe", Role.MODERATOR)
    for path in ("/moderation/queue/pending", "/moderation/audit", "/editor/articles"):
        response = stranger.get(path)
        assert response.status_code == 302 and "/signin?next=" in response.headers["Location"]
        response = reader.get(path)
        assert response.status_code == 403, path
        assert "Only a" in response.get_data(as_text=True)
    for path in ("/editor/articles", "/editor/rules"):
        assert moderator.get(path).status_code == 403
    assert moderator.get("/moderation/queue/appeals").status_code == 200
    for path, data in (
        ("/moderation/comments/1/decision", {"action": "approve"}),
        ("/moderation/users/1/sanctions", {"kind": "ban"}),
        (f"/editor/articles/{article}/close", {}),
        ("/editor/rules", {"code": "x", "title": "x", "text": "x"}),
    ):
        assert reader.post(path, data).status_code == 403, path
        assert stranger.post(path, data).status_code == 401, path
    assert moderator.post(f"/editor/articles/{article}/close").status_code == 403


def test_moderator_withdraws_sanctions_and_appeal_is_reversed(app, browser, article) -> None:
    author = browser("Troll")
    comment = _post(author, article, "You are a stupid idiot & <b>worse</b>")
    mod1, mod2 = browser("Mia", Role.MODERATOR), browser("Max", Role.MODERATOR)

    html = mod1.text("/moderation/queue/pending")
    assert 'Held for review <span class="count">1</span>' in html
    assert "<mark" in html and "stupid</mark>" in html
    assert "&amp; &lt;b&gt;worse&lt;/b&gt;" in html  # the raw text, escaped around the marks

    # A withdrawal needs a rule: refused, the note is kept.
    response = mod1.post(
        f"/moderation/comments/{comment}/decision",
        {
            "action": "withdraw",
            "rule": "",
            "note": "Name-calling",
            "next": "/moderation/queue/pending",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Cite the house rule." in html and "Name-calling" in html
    response = mod1.post(
        f"/moderation/comments/{comment}/decision",
        {"action": "withdraw", "rule": "civil", "note": "Name-calling", "next": "/x"},
    )
    assert response.status_code == 302
    assert _status(app, comment) == CommentStatus.WITHDRAWN
    assert "Nothing waiting here" in mod1.text("/moderation/queue/pending")

    with app.app_context():
        author_id = db.session.get(Comment, comment).author_id
    response = mod1.post(
        f"/moderation/users/{author_id}/sanctions",
        {"kind": "suspension", "rule": "civil", "reason": "", "days": "3"},
    )
    assert response.status_code == 422 and "Give a reason." in response.get_data(as_text=True)
    response = mod1.post(
        f"/moderation/users/{author_id}/sanctions",
        {"kind": "suspension", "rule": "civil", "reason": "Repeated abuse", "days": "3"},
    )
    assert response.status_code == 302

    html = author.text(f"/articles/{article}")
    assert "You are suspended from commenting" in html and 'id="comment-body"' not in html
    response = author.post(
        f"/articles/{article}/comments", {"body": "Let me back in", "next": f"/articles/{article}"}
    )
    assert response.status_code == 403 and "Let me back in" in response.get_data(as_text=True)

    html = author.text("/me/notices")
    assert "You have been suspended from commenting" in html
    assert "/api/v1/decisions" not in html
    decision_ids = re.findall(r'action="/me/decisions/(\d+)/appeal"', html)
    assert len(decision_ids) == 2
    suspension = max(int(d) for d in decision_ids)
    response = author.post(f"/me/decisions/{suspension}/appeal", {"statement": "  "})
    assert response.status_code == 422
    response = author.post(f"/me/decisions/{suspension}/appeal", {"statement": "I was provoked"})
    assert response.status_code == 302
    assert "Your appeal: open" in author.text("/me/notices")

    html = mod1.text("/moderation/queue/appeals")
    assert "I was provoked" in html and "another moderator must decide" in html
    html = mod2.text("/moderation/queue/appeals")
    appeal_id = re.search(r"/moderation/appeals/(\d+)/decision", html).group(1)
    response = mod2.post(
        f"/moderation/appeals/{appeal_id}/decision",
        {"action": "reverse", "note": "Fair point", "next": "/moderation/queue/appeals"},
    )
    assert response.status_code == 302
    assert 'id="comment-body"' in author.text(f"/articles/{article}")
    assert "Your appeal succeeded" in author.text("/me/notices")

    html = mod2.text("/moderation/audit?action=appeal")
    assert "<code>appeal.reversed</code>" in html
    assert "<code>comment.withdraw</code>" not in html
    html = mod2.text("/moderation/audit")
    assert "<code>comment.withdraw</code>" in html and "<code>user.suspension</code>" in html
    assert "Withdrawn by a moderator" in author.text("/me/comments")


def test_approve_from_the_queue_and_conflict_is_explained(app, browser, article) -> None:
    author = browser("Vic")
    comment = _post(author, article, "You are a stupid idiot")
    assert _status(app, comment) == CommentStatus.PENDING
    mod = browser("Mo", Role.MODERATOR)
    response = mod.post(
        f"/moderation/comments/{comment}/decision",
        {"action": "approve", "next": "/moderation/queue/pending"},
    )
    assert (
        response.status_code == 302 and response.headers["Location"] == "/moderation/queue/pending"
    )
    assert _status(app, comment) == CommentStatus.PUBLISHED
    response = mod.post(
        f"/moderation/comments/{comment}/decision",
        {"action": "approve", "next": "/moderation/queue/pending"},
        follow_redirects=True,
    )
    assert "already published" in response.get_data(as_text=True)


def test_highlight_escapes_the_raw_text_around_marks() -> None:
    from moderation.views import highlight

    body = '<b onclick="x">idiot</b> & idiots'
    spans = [
        {"signal": "insult", "term": "idiot", "weight": 4, "spans": [[15, 20], [27, 32]]},
        {"signal": "offensive", "term": "idiot", "weight": 3, "spans": [[15, 20]]},
        {"signal": "spam", "term": "bad", "weight": 1, "spans": [[90, 95]]},  # out of range
    ]
    html = str(highlight(body, spans))
    assert html == (
        '&lt;b onclick=&#34;x&#34;&gt;<mark title="insult: idiot; offensive: idiot">idiot</mark>'
        '&lt;/b&gt; &amp; <mark title="insult: idiot">idiot</mark>s'
    )


# ---------------------------------------------------------------------------- editors


def test_editor_registers_closes_and_reopens_articles(app, browser, article) -> None:
    ed = browser("Eve", Role.EDITOR)
    html = ed.text("/editor/articles")
    assert "Jobs move from Durham" in html and "Open" in html
    response = ed.post(
        "/editor/articles",
        {"key": "bad key", "title": "A new story", "url": "ftp://x", "auto_close_days": "7"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'value="A new story"' in html and 'value="bad key"' in html
    response = ed.post(
        "/editor/articles",
        {"key": "new-story", "title": "A new story", "url": "https://n.example/1"},
    )
    assert response.status_code == 302
    assert "A new story" in ed.text("/")

    assert ed.post(f"/editor/articles/{article}/close").status_code == 302
    assert "Comments are closed on this article" in ed.text(f"/articles/{article}")
    assert "Closed" in ed.text("/editor/articles")
    assert ed.post(f"/editor/articles/{article}/reopen").status_code == 302
    assert 'id="comment-body"' in ed.text(f"/articles/{article}")

    response = ed.post(f"/editor/articles/{article}/auto-close", {"auto_close_days": "abc"})
    assert response.status_code == 422 and 'value="abc"' in response.get_data(as_text=True)
    assert (
        ed.post(f"/editor/articles/{article}/auto-close", {"auto_close_days": "0"}).status_code
        == 302
    )
    from comments import services

    with app.app_context():
        assert services.get_article(article).auto_close_days == 0
    html = ed.text("/moderation/audit")
    assert "article.create" in html and "article.close" in html and "article.edit" in html


def test_rules_editor_creates_edits_and_retires(app, browser) -> None:
    ed = browser("Eve", Role.EDITOR)
    response = ed.post("/editor/rules", {"code": "bad code!", "title": "T", "text": "Keep me"})
    assert response.status_code == 422 and "Keep me" in response.get_data(as_text=True)
    response = ed.post("/editor/rules", {"code": "nice", "title": "Be nice", "text": "Or else."})
    assert response.status_code == 302
    assert "Be nice" in ed.text("/rules")
    response = ed.post("/editor/rules/nice", {"title": "", "text": "Edited text"})
    assert response.status_code == 422 and "Edited text" in response.get_data(as_text=True)
    response = ed.post(
        "/editor/rules/nice", {"title": "Be kind", "text": "Kindly.", "signals": ["insult"]}
    )
    assert response.status_code == 302
    assert "Be kind" in ed.text("/rules")
    assert ed.post("/editor/rules/nice/retire").status_code == 302
    assert 'id="nice"' not in ed.text("/rules")
    assert "Retired" in ed.text("/editor/rules")
    assert ed.post("/editor/rules/nice/restore").status_code == 302
    assert 'id="nice"' in ed.text("/rules")


def test_demo_page_embeds_the_thread_with_the_rules_notice(browser, article) -> None:
    b = browser("Ann")
    html = b.text(f"/demo/{article}")
    assert "Comments: Our rules" in html and "privilege, not a right" in html
    assert '<a href="/rules">Read the rules here</a>' in html
    response = b.post(
        f"/articles/{article}/comments",
        {"body": "From the story page.", "next": f"/demo/{article}"},
    )
    assert response.headers["Location"].startswith(f"/demo/{article}#c")
    assert "From the story page." in b.text(f"/demo/{article}")


def test_my_comments_show_each_status(app, browser, article) -> None:
    b = browser("Sam")
    _post(b, article, "Published and civil.")
    _post(b, article, "You are a stupid idiot")
    html = b.text("/me/comments")
    assert "Published" in html and "Awaiting review" in html


def test_unknown_pages_render_html_errors(browser) -> None:
    response = browser().get("/articles/no-such-story", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "No such article." in response.get_data(as_text=True)


def test_my_data_page_downloads_and_deletes(app, signed_in, article) -> None:
    reader = signed_in("Leaver")
    reader.comment(article, "Thanks for covering the library closure properly.")
    page = reader.client.get("/me/data")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/v1/me/export" in html and "[deleted account]" in html
    download = reader.client.get("/api/v1/me/export")
    assert download.get_json()["account"]["email"] == "leaver@example.com"
    token = reader.get("/auth/session").get_json()["csrf_token"]
    wrong = reader.client.post("/me/delete", data={"csrf_token": token, "password": "nope"})
    assert wrong.status_code == 403 and "That password is not right." in wrong.get_data(
        as_text=True
    )
    gone = reader.client.post(
        "/me/delete", data={"csrf_token": token, "password": "correct horse battery staple"}
    )
    assert gone.status_code in (302, 303)
    assert reader.get("/auth/session").get_json()["user"] is None
    thread = reader.client.get(f"/articles/{article}").get_data(as_text=True)
    assert "[deleted account]" in thread and "library closure" in thread
