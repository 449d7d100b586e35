"""Sign-up, sign-in, sign-out, the session endpoint, CSRF and staff accounts."""

from __future__ import annotations

import pytest

from comments import create_app
from comments.config import DEFAULT_SECRET_KEY
from tests.conftest import PASSWORD, Api


def test_signup_signs_in_and_session_shows_user(api: Api) -> None:
    response = api.signup("Ann@Example.com", "Ann Other")
    assert response.status_code == 201
    user = response.get_json()["user"]
    assert user["email"] == "ann@example.com"
    assert user["display_name"] == "Ann Other"
    assert user["role"] == "reader"
    session = api.get("/auth/session").get_json()
    assert session["user"]["id"] == user["id"]
    assert session["csrf_token"]


def test_email_is_unique_case_insensitively(api: Api, app) -> None:
    assert api.signup("ann@example.com", "Ann").status_code == 201
    other = Api(app.test_client())
    response = other.signup("ANN@EXAMPLE.COM", "Another Ann")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "email_taken"


def test_display_name_is_unique_ignoring_case_and_width(api: Api, app) -> None:
    assert api.signup("a@example.com", "Ann").status_code == 201
    response = Api(app.test_client()).signup("b@example.com", "ＡＮＮ")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "display_name_taken"


@pytest.mark.parametrize(
    "name",
    ["A", "x" * 41, "Ann\u200bOther", "Evil\u202eName", "Tab\tName", "Bell\x07", "  "],
)
def test_display_name_rules(api: Api, name: str) -> None:
    response = api.signup("c@example.com", name)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] in ("invalid_display_name", "validation_failed")
    assert "display_name" in error["fields"]


def test_short_password_and_bad_email_refused(api: Api) -> None:
    weak = api.signup("d@example.com", "Dee", password="short")
    assert weak.status_code == 422 and weak.get_json()["error"]["code"] == "weak_password"
    bad = api.signup("not-an-email", "Dee")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_email"


def test_signin_same_answer_for_unknown_email_and_wrong_password(api: Api, app) -> None:
    api.signup("e@example.com", "Eve")
    fresh = Api(app.test_client())
    wrong = fresh.signin("e@example.com", "wrong password!!")
    unknown = fresh.signin("nobody@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["code"] == "invalid_credentials"


def test_signin_starts_a_new_session_and_signout_ends_it(api: Api, app) -> None:
    api.signup("f@example.com", "Fay")
    client = Api(app.test_client())
    before = client.get("/auth/session")
    before_cookie = client.client.get_cookie("parley_session")
    assert before.get_json()["user"] is None
    response = client.signin("f@example.com")
    assert response.status_code == 200
    after_cookie = client.client.get_cookie("parley_session")
    assert after_cookie is not None and after_cookie.value != before_cookie.value
    assert after_cookie.http_only and after_cookie.same_site == "Lax"
    assert not after_cookie.secure  # development; production sets Secure
    assert client.post("/auth/signout").status_code == 204
    assert client.get("/auth/session").get_json()["user"] is None
    assert client.comment("x", "hello").status_code == 401


def test_state_changes_need_a_csrf_token(app) -> None:
    client = app.test_client()
    response = client.post(
        "/api/v1/auth/signup",
        json={"email": "g@example.com", "display_name": "Gus", "password": PASSWORD},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf_failed"
    bad = client.post(
        "/api/v1/auth/signup",
        json={"email": "g@example.com", "display_name": "Gus", "password": PASSWORD},
        headers={"X-CSRFToken": "forged"},
    )
    assert bad.status_code == 400


def test_production_refuses_default_secret_key(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="default secret key"):
        create_app(
            {
                "ENV": "production",
                "SECRET_KEY": DEFAULT_SECRET_KEY,
                "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            }
        )
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "a-real-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    with app.app_context():
        from comments.extensions import db

        db.engine.dispose()


def test_config_from_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PARLEY_EDIT_WINDOW_MINUTES", "30")
    monkeypatch.setenv("PARLEY_DATABASE_URL", "postgresql://u@h/db")
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["EDIT_WINDOW_MINUTES"] == 30
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_cli_creates_staff_account(app) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "ed@example.com",
            "--name",
            "Ed Itor",
            "--password",
            PASSWORD,
            "--role",
            "editor",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created editor Ed Itor" in result.output
    client = Api(app.test_client())
    assert client.signin("ed@example.com").get_json()["user"]["role"] == "editor"
    again = runner.invoke(
        args=["users", "create", "ed@example.com", "--name", "Ed Two", "--password", PASSWORD]
    )
    assert again.exit_code != 0 and "email_taken" in again.output
