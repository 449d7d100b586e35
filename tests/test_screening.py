"""The classifier in the product: every post and edit is scored before commit, the policy
publishes or holds, moderators see why, and their decisions teach the next model.

Texts are the tests' own, written to be plainly civil or plainly abusive."""

from __future__ import annotations

import json

import pytest

from comments.extensions import db
from comments.models import Comment, Role
from tests.conftest import Api

CIVIL = "Thanks for the report. I hope the council finds a way to keep these jobs in Durham."
INSULT = "You are a pathetic idiot and a worthless moron, shut up you stupid loser."
SPAM = "BUY CHEAP WATCHES NOW!!! Best prices at www.cheap-watch-deals.example.com click here"


@pytest.fixture
def moderator(signed_in) -> Api:
    return signed_in("Moderator", Role.MODERATOR)


def test_civil_published_abuse_held_with_scores_stored(app, reader: Api, article: str) -> None:
    civil = reader.comment(article, CIVIL)
    assert civil.status_code == 201
    insult = reader.comment(article, INSULT)
    assert insult.status_code == 202
    held = insult.get_json()["comment"]
    assert held["status"] == "pending" and held["held_reason"] == "classifier"
    spam = reader.comment(article, SPAM)
    assert spam.status_code == 202
    with app.app_context():
        stored = db.session.get(Comment, held["id"])
        assert stored.scores["insult"] > 0.5 and stored.model_version.startswith("signals-")
        assert stored.score == max(
            stored.scores[s] for s in ("insult", "offensive", "hate", "spam")
        )
        ok = db.session.get(Comment, civil.get_json()["comment"]["id"])
        assert ok.scores["insult"] < stored.scores["insult"]


def test_edit_is_scored_again(reader: Api, article: str) -> None:
    comment = reader.comment(article, CIVIL).get_json()["comment"]
    edited = reader.patch(f"/comments/{comment['id']}", {"body": INSULT})
    assert edited.status_code == 200
    assert edited.get_json()["comment"]["status"] == "pending"
    back = reader.patch(f"/comments/{comment['id']}", {"body": CIVIL})
    assert back.get_json()["comment"]["status"] == "published"


def test_very_high_scores_rejected_when_site_enables_it(app, reader: Api, article: str) -> None:
    app.config["POLICY_REJECT_ENABLED"] = True
    app.config["POLICY_REJECT_THRESHOLDS"] = {"insult": 0.8}
    response = reader.comment(article, INSULT)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "comment_rejected" and "revise" in error["message"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Comment.id))) == 0
    assert reader.comment(article, CIVIL).status_code == 201


def test_site_thresholds_override_the_models(app, reader: Api, article: str) -> None:
    app.config["POLICY_HOLD_THRESHOLDS"] = {
        "insult": 1.01,
        "offensive": 1.01,
        "hate": 1.01,
        "spam": 1.01,
    }
    assert reader.comment(article, INSULT).status_code == 201


def test_moderator_sees_scores_and_highlighted_terms(
    reader: Api, moderator: Api, article: str
) -> None:
    held = reader.comment(article, INSULT).get_json()["comment"]
    item = moderator.get("/moderation/queue?kind=pending").get_json()["items"][0]
    assert item["comment"]["id"] == held["id"]
    assert item["scores"]["insult"] > 0.5
    assert item["highlights"], "expected terms that pushed the score"
    for term in item["highlights"]:
        for start, end in term["spans"]:
            assert INSULT[start:end].strip()
    highlighted = {INSULT[s:e].lower() for t in item["highlights"] for s, e in t["spans"]}
    assert highlighted & {"idiot", "moron", "stupid", "loser", "pathetic", "worthless"}


def test_model_loaded_once_per_worker(app, reader: Api, article: str) -> None:
    from moderation.scoring import get_model

    reader.comment(article, CIVIL)
    with app.app_context():
        first = get_model()
    reader.comment(article, CIVIL + " Again.")
    with app.app_context():
        assert get_model() is first



def test_a_worker_starts_with_the_classifier_loaded_and_its_heap_frozen(
    app, database_url: str
) -> None:
    """gunicorn imports wsgi.py once per worker: the model is in memory before the first
    post, and what was loaded is frozen out of the collector's full passes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import gc, wsgi\n"
        "print(wsgi.app.extensions['parley.model'].get('model') is not None)\n"
        "print(gc.get_freeze_count() > 10000)\n"
    )
    env = {**os.environ, "PARLEY_DATABASE_URL": database_url, "PARLEY_SECRET_KEY": "t"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]

def test_retrain_from_decisions_changes_and_activates_model(
    app, reader: Api, signed_in, moderator: Api, article: str
) -> None:
    """A site's own decisions teach the next model, with only the shipped model present."""
    # A site-specific kind of abuse the shipped model doesn't know: "gammon" as an insult.
    abusive = [
        f"Typical gammon {name}, nobody wants your gammon opinions here."
        for name in (
            "Dave",
            "Steve",
            "Gary",
            "Keith",
            "Barry",
            "Nigel",
            "Clive",
            "Derek",
            "Trevor",
            "Colin",
            "Roger",
            "Malcolm",
        )
    ]
    civil = [
        f"The {thing} in Durham has improved a lot this year."
        for thing in (
            "bus station",
            "market",
            "library",
            "cathedral tour",
            "river path",
            "park",
            "museum",
            "high street",
            "swimming pool",
            "theatre",
            "railway station",
            "bridge",
        )
    ]
    app.config["DUPLICATE_WINDOW_MINUTES"] = 0  # the examples are deliberately alike
    writers = [signed_in(f"Writer{i}") for i in range(4)]
    for writer in writers:  # premoderated: every post waits for a moderator's decision
        moderator.post(
            f"/moderation/users/{writer.user['id']}/sanctions",
            {"kind": "premoderation", "rule": "civil", "reason": "new"},
        )
    for i, text in enumerate(abusive + civil):
        response = writers[i % 4].comment(article, text)
        assert response.status_code == 202
        cid = response.get_json()["comment"]["id"]
        body = {"action": "withdraw", "rule": "civil"} if text in abusive else {"action": "approve"}
        assert moderator.post(f"/moderation/comments/{cid}/decision", body).status_code == 200
    probe = "Another gammon rant from you, Kevin."
    runner = app.test_cli_runner()
    with app.app_context():
        from moderation.scoring import get_model, reset_model

        before = get_model().score(probe)["insult"]
    result = runner.invoke(args=["moderation", "retrain", "--force"])
    assert result.exit_code == 0, result.output
    assert "activated" in result.output
    models = json.loads(runner.invoke(args=["moderation", "models", "--json"]).output)
    assert models["shipped_active"] is False and len(models["models"]) == 1
    with app.app_context():
        reset_model()
        model = get_model()
        assert model.version == models["models"][0]["version"]
        assert model.score(probe)["insult"] > before + 0.05
    back = runner.invoke(args=["moderation", "activate", "shipped"])
    assert back.exit_code == 0
    with app.app_context():
        reset_model()
        assert get_model().score(probe)["insult"] == pytest.approx(before, abs=1e-6)


def test_held_comment_keeps_its_explanation_for_the_queue(
    app, reader: Api, moderator: Api, article: str
) -> None:
    held = reader.comment(article, INSULT).get_json()["comment"]
    with app.app_context():
        stored = db.session.get(Comment, held["id"]).explanation
    assert stored and all(t["weight"] > 0 for t in stored)
    item = moderator.get("/moderation/queue?kind=pending").get_json()["items"][0]
    assert item["highlights"] == stored
    civil = reader.comment(article, CIVIL).get_json()["comment"]
    with app.app_context():
        assert db.session.get(Comment, civil["id"]).explanation is None  # published: no cost
