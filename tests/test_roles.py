"""Walk every API route with every role and anonymously: each is allowed exactly for the
roles this table names, and the table names every route the app has."""

from __future__ import annotations

import pytest

from comments.models import Role
from tests.conftest import Api

ANYONE, SIGNED_IN = "anyone", "signed_in"

# (method, path with ids that don't exist, who may call it)
ROUTES = [
    ("POST", "/auth/signup", ANYONE),
    ("POST", "/auth/signin", ANYONE),
    ("POST", "/auth/signout", ANYONE),
    ("GET", "/auth/session", ANYONE),
    ("POST", "/auth/password", SIGNED_IN),
    ("GET", "/me/export", SIGNED_IN),
    ("DELETE", "/me", SIGNED_IN),
    ("GET", "/openapi.json", ANYONE),
    ("POST", "/articles", Role.EDITOR),
    ("GET", "/articles/{key}", ANYONE),
    ("PATCH", "/articles/{key}", Role.EDITOR),
    ("POST", "/articles/{key}/close", Role.EDITOR),
    ("POST", "/articles/{key}/reopen", Role.EDITOR),
    ("GET", "/articles/{key}/comments", ANYONE),
    ("POST", "/articles/{key}/comments", SIGNED_IN),
    ("GET", "/comments/{comment_id}", ANYONE),
    ("PATCH", "/comments/{comment_id}", SIGNED_IN),
    ("DELETE", "/comments/{comment_id}", SIGNED_IN),
    ("POST", "/comments/{comment_id}/reports", SIGNED_IN),
    ("GET", "/rules", ANYONE),
    ("POST", "/rules", Role.EDITOR),
    ("PATCH", "/rules/{code}", Role.EDITOR),
    ("GET", "/me/notices", SIGNED_IN),
    ("GET", "/me/reports", SIGNED_IN),
    ("GET", "/me/comments", SIGNED_IN),
    ("POST", "/decisions/{decision_id}/appeal", SIGNED_IN),
    ("GET", "/moderation/queue", Role.MODERATOR),
    ("GET", "/moderation/queue/counts", Role.MODERATOR),
    ("POST", "/moderation/comments/{comment_id}/decision", Role.MODERATOR),
    ("POST", "/moderation/decisions", Role.MODERATOR),
    ("GET", "/moderation/users/{user_id}", Role.MODERATOR),
    ("POST", "/moderation/users/{user_id}/sanctions", Role.MODERATOR),
    ("DELETE", "/moderation/sanctions/{sanction_id}", Role.MODERATOR),
    ("POST", "/moderation/appeals/{appeal_id}/decision", Role.MODERATOR),
    ("GET", "/moderation/audit", Role.MODERATOR),
    ("GET", "/moderation/audit.csv", Role.ADMIN),
    ("POST", "/admin/users/{user_id}/role", Role.ADMIN),
]
IDS = {
    "key": "no-such-article",
    "comment_id": "999999",
    "decision_id": "999999",
    "user_id": "999999",
    "sanction_id": "999999",
    "appeal_id": "999999",
    "code": "no-rule",
}


def _routes_in_app(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule[len("/api/v1") :]
        for conv in ("int:",):
            path = path.replace("<" + conv, "<")
        path = path.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method, path))
    return found


def test_table_covers_every_route(app) -> None:
    assert _routes_in_app(app) == {(m, p) for m, p, _ in ROUTES}


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: r.value if r else "anonymous")
def test_every_route_allows_exactly_its_roles(app, signed_in, role) -> None:
    client = signed_in(f"Walker{role.value}", role) if role else Api(app.test_client())
    # signing out last, so the walk keeps its session
    for method, path, who in sorted(
        ROUTES, key=lambda r: {"/me": 1, "/auth/signout": 2}.get(r[1], 0)
    ):
        url = path.format(**IDS)
        response = client.request(method, url, json={} if method != "GET" else None)
        status = response.status_code
        if who == ANYONE:
            allowed = True
        elif who == SIGNED_IN:
            allowed = role is not None
        else:
            allowed = role is not None and role.at_least(who)
        if allowed:
            assert status not in (401, 403), (role, method, url, response.get_json())
        else:
            assert status == (401 if role is None else 403), (role, method, url, status)
            assert response.get_json()["error"]["code"] in ("auth_required", "forbidden")
