"""`flask demo load`: stories, threads through the real posting path, one user per role."""

from comments.extensions import db
from comments.models import Comment, Role, User
from tests.conftest import Api


def test_demo_load_builds_a_working_site_and_is_idempotent(app) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "password: demo-moderator-pass" in first.output
    with app.app_context():
        roles = set(db.session.scalars(db.select(User.role)))
        assert roles == set(Role)
        statuses = [c.status.value for c in db.session.scalars(db.select(Comment))]
    assert statuses.count("published") >= 6 and "pending" in statuses
    client = Api(app.test_client())
    thread = client.get("/articles/ns-and-i-durham-jobs-india/comments").get_json()
    assert thread["article"]["title"].startswith("National Savings jobs")
    assert client.signin("moderator@parley.test", "demo-moderator-pass").status_code == 200
    reported = client.get("/moderation/queue?kind=reported").get_json()
    assert reported["items"][0]["report_count"] == 3
    again = runner.invoke(args=["demo", "load"])
    assert again.exit_code == 0 and "already exist" in again.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Comment.id))) == len(statuses)
