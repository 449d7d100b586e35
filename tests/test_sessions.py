"""Sessions end when they should: sign-out and a password change end the user's other
sessions, and a ban ends them all."""

from __future__ import annotations

import time

import pytest

from comments.models import Role
from tests.conftest import PASSWORD, Api


def _two_sessions(app, make_user, name: str = "Sam") -> tuple[Api, Api]:
    make_user(name)
    laptop, phone = Api(app.test_client()), Api(app.test_client())
    assert laptop.signin(f"{name.lower()}@example.com").status_code == 200
    assert phone.signin(f"{name.lower()}@example.com").status_code == 200
    return laptop, phone


def _whoami(client: Api):
    return client.get("/auth/session").get_json()["user"]


def test_signout_ends_other_sessions(app, make_user) -> None:
    laptop, phone = _two_sessions(app, make_user)
    assert _whoami(phone)["display_name"] == "Sam"
    assert laptop.post("/auth/signout").status_code == 204
    assert _whoami(laptop) is None and _whoami(phone) is None
    assert phone.comment("any", "hello").status_code == 401


def test_password_change_keeps_this_session_and_ends_the_others(app, make_user) -> None:
    laptop, phone = _two_sessions(app, make_user)
    wrong = laptop.post(
        "/auth/password",
        {"current_password": "nope nope nope", "new_password": "a brand new password"},
    )
    assert wrong.status_code == 403
    weak = laptop.post("/auth/password", {"current_password": PASSWORD, "new_password": "x"})
    assert weak.status_code == 422
    done = laptop.post(
        "/auth/password", {"current_password": PASSWORD, "new_password": "a brand new password"}
    )
    assert done.status_code == 200
    assert _whoami(laptop)["display_name"] == "Sam"
    assert _whoami(phone) is None
    fresh = Api(app.test_client())
    assert fresh.signin("sam@example.com").status_code == 401
    assert fresh.signin("sam@example.com", "a brand new password").status_code == 200


def test_ban_ends_sessions_but_user_may_sign_in_to_read_and_appeal(
    app, make_user, signed_in, article: str
) -> None:
    laptop, _ = _two_sessions(app, make_user, "Banned")
    moderator = signed_in("Mod", Role.MODERATOR)
    uid = _whoami(laptop)["id"]
    ban = moderator.post(
        f"/moderation/users/{uid}/sanctions",
        {"kind": "ban", "rule": "civil", "reason": "repeated abuse"},
    )
    assert ban.status_code == 201
    assert _whoami(laptop) is None
    again = Api(app.test_client())
    assert again.signin("banned@example.com").status_code == 200
    assert again.get(f"/articles/{article}/comments").status_code == 200
    refused = again.comment(article, "Let me back in please, I was only joking.")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "banned"
    notice = again.get("/me/notices").get_json()["notices"][0]
    assert notice["can_appeal"] is True
    appeal = again.post(
        f"/decisions/{notice['decision']['id']}/appeal", {"statement": "It won't happen again."}
    )
    assert appeal.status_code == 201


# Each worker remembers the session cookies it verified (comments/sessions.py): a cookie it
# has seen must be refused exactly when Flask's own check would refuse it.


def _session_cookie(client: Api) -> str:
    cookie = client.client.get_cookie("parley_session")
    assert cookie is not None
    return cookie.value


def _with_cookie(app, value: str) -> Api:
    other = Api(app.test_client())
    other.client.set_cookie("parley_session", value)
    return other


def test_a_remembered_session_cookie_still_expires(app, make_user, monkeypatch) -> None:
    make_user("Sam")
    laptop = Api(app.test_client())
    assert laptop.signin("sam@example.com").status_code == 200
    cookie = _session_cookie(laptop)
    assert _whoami(_with_cookie(app, cookie))["display_name"] == "Sam"  # verified, remembered
    assert _whoami(_with_cookie(app, cookie))["display_name"] == "Sam"  # from memory
    lifetime = app.permanent_session_lifetime.total_seconds()
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + lifetime + 60)
    assert _whoami(_with_cookie(app, cookie)) is None
    monkeypatch.setattr(time, "time", lambda: now + lifetime - 60)
    assert _whoami(_with_cookie(app, cookie))["display_name"] == "Sam"  # not yet expired


def test_a_changed_cookie_or_a_new_secret_key_refuses_a_remembered_session(app, make_user) -> None:
    make_user("Sam")
    laptop = Api(app.test_client())
    assert laptop.signin("sam@example.com").status_code == 200
    cookie = _session_cookie(laptop)
    assert _whoami(_with_cookie(app, cookie))["display_name"] == "Sam"
    payload, _, signature = cookie.rpartition(".")
    forged = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert _whoami(_with_cookie(app, forged)) is None
    app.secret_key = "a rotated secret key that signed none of these"
    assert _whoami(_with_cookie(app, cookie)) is None


def test_what_one_request_does_to_its_session_reaches_no_other(app, make_user) -> None:
    """A session built from a remembered cookie is that request's own: clearing and changing
    it leaves the next request with the same cookie holding what the cookie says."""
    make_user("Sam")
    laptop = Api(app.test_client())
    assert laptop.signin("sam@example.com").status_code == 200
    cookie = _session_cookie(laptop)
    copy = _with_cookie(app, cookie)
    assert _whoami(copy)["display_name"] == "Sam"
    with _with_cookie(app, cookie).client.session_transaction() as session:
        assert session.get("_user_id")
        session.clear()
        session["note"] = "changed in one request"
    again = _with_cookie(app, cookie)
    with again.client.session_transaction() as session:
        assert "note" not in session and session.get("_user_id")


# The same for CSRF tokens: a token a worker has verified is refused exactly when
# Flask-WTF's own check would refuse it.


# A write that gets past the CSRF check ends in 404: there is no such article.
NOWHERE = "/api/v1/articles/nowhere/comments"


def _post_as(app, cookie: str, token: str | None):
    client = app.test_client()
    client.set_cookie("parley_session", cookie)
    headers = {"X-CSRFToken": token} if token is not None else {}
    return client.post(NOWHERE, json={"body": "Hello there."}, headers=headers)


def _signed_in(app, make_user, name: str) -> tuple[str, str]:
    make_user(name)
    client = Api(app.test_client())
    response = client.signin(f"{name.lower()}@example.com")
    assert response.status_code == 200
    return _session_cookie(client), response.get_json()["csrf_token"]


def _code(response) -> str:
    return response.get_json()["error"]["code"]


def _passes(response) -> bool:
    """Past the CSRF check: the article's 404, not the token's 400."""
    return response.status_code == 404 and _code(response) == "not_found"


def test_a_remembered_csrf_token_still_belongs_to_its_own_session(app, make_user) -> None:
    sam_cookie, sam_token = _signed_in(app, make_user, "Sam")
    kim_cookie, kim_token = _signed_in(app, make_user, "Kim")
    for _ in range(2):  # verified, then remembered
        assert _passes(_post_as(app, sam_cookie, sam_token))
        assert _passes(_post_as(app, kim_cookie, kim_token))
    # Each token is in memory now, and still only good with the session it came from.
    assert _code(_post_as(app, sam_cookie, kim_token)) == "csrf_failed"
    assert _code(_post_as(app, kim_cookie, sam_token)) == "csrf_failed"
    assert _code(_post_as(app, sam_cookie, None)) == "csrf_failed"
    # Change the signature's first character: its last one carries padding bits, so
    # some swaps there (A for B) decode to the same bytes and forge nothing.
    head, _, signature = sam_token.rpartition(".")
    forged = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert _code(_post_as(app, sam_cookie, forged)) == "csrf_failed"
    app.secret_key = "a rotated secret key that signed none of these"
    assert _code(_post_as(app, sam_cookie, sam_token)) == "csrf_failed"


def test_a_signed_out_session_refuses_its_remembered_csrf_token(app, make_user) -> None:
    make_user("Sam")
    laptop = Api(app.test_client())
    token = laptop.signin("sam@example.com").get_json()["csrf_token"]
    assert _passes(laptop.post("/articles/nowhere/comments", {"body": "Hello there."}))
    assert laptop.post("/auth/signout").status_code == 204
    # The anonymous session that follows holds a new CSRF value: the old token is refused.
    client = laptop.client
    client.get("/api/v1/auth/session")
    stale = client.post("/api/v1/auth/signin", json={}, headers={"X-CSRFToken": token})
    assert _code(stale) == "csrf_failed"


@pytest.mark.config(WTF_CSRF_TIME_LIMIT=600)
def test_a_remembered_csrf_token_still_expires(app, make_user, monkeypatch) -> None:
    cookie, token = _signed_in(app, make_user, "Sam")
    assert _passes(_post_as(app, cookie, token))
    assert _passes(_post_as(app, cookie, token))  # from memory
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 660)
    assert _code(_post_as(app, cookie, token)) == "csrf_failed"
    monkeypatch.setattr(time, "time", lambda: now + 540)
    assert _passes(_post_as(app, cookie, token))


def test_a_form_post_sends_its_csrf_token_in_the_form(app, make_user) -> None:
    """Pages post forms: their token comes in the body, not a header (past the check, the
    JSON API then refuses a form with 415)."""
    cookie, token = _signed_in(app, make_user, "Sam")
    client = app.test_client()
    client.set_cookie("parley_session", cookie)
    refused = client.post(NOWHERE, data={"csrf_token": "forged", "body": "Hello there."})
    assert _code(refused) == "csrf_failed"
    accepted = client.post(NOWHERE, data={"csrf_token": token, "body": "Hello there."})
    assert accepted.status_code == 415 and _code(accepted) == "unsupported_media_type"
