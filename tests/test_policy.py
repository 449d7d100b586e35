"""The pure screening policy and sanctions ladder, without an app."""

import pytest

from moderation.policy import (
    PolicyConfig,
    Standing,
    decide,
    report_threshold_reached,
    rule_breaking_score,
    suggest_sanction,
)

THRESHOLDS = {"insult": 0.5, "spam": 0.6, "hate": 0.4}
REJECT = {"insult": 0.95}


def test_rule_breaking_score_is_highest_linked_signal() -> None:
    scores = {"insult": 0.3, "spam": 0.8, "hate": 0.1}
    assert rule_breaking_score(scores, ["insult", "hate"]) == ("insult", 0.3)
    assert rule_breaking_score(scores, ["insult", "spam"]) == ("spam", 0.8)
    assert rule_breaking_score(scores, []) == (None, 0.0)


@pytest.mark.parametrize(
    ("scores", "standing", "config", "action", "reason"),
    [
        ({"insult": 0.1}, Standing(), PolicyConfig(), "publish", None),
        ({"insult": 0.5}, Standing(), PolicyConfig(), "hold", "classifier"),
        ({"spam": 0.59}, Standing(), PolicyConfig(), "publish", None),
        ({"insult": 0.1}, Standing(premoderated=True), PolicyConfig(), "hold", "premoderation"),
        ({"insult": 0.97}, Standing(), PolicyConfig(), "hold", "classifier"),
        ({"insult": 0.97}, Standing(), PolicyConfig(reject_enabled=True), "reject", "classifier"),
        (
            {"insult": 0.7},
            Standing(),
            PolicyConfig(hold_thresholds={"insult": 0.8}),
            "publish",
            None,
        ),
        (
            {"insult": 0.1},
            Standing(published_count=0),
            PolicyConfig(hold_first_posts=1),
            "hold",
            "new_account",
        ),
        (
            {"insult": 0.1},
            Standing(published_count=1),
            PolicyConfig(hold_first_posts=1),
            "publish",
            None,
        ),
        ({"legal_advice": 0.99}, Standing(), PolicyConfig(), "publish", None),  # not linked
        (None, Standing(), PolicyConfig(), "publish", None),
    ],
)
def test_decide(scores, standing, config, action, reason) -> None:
    verdict = decide(scores, ["insult", "spam", "hate"], THRESHOLDS, standing, config, REJECT)
    assert (verdict.action, verdict.reason) == (action, reason)


def test_reports_threshold() -> None:
    assert not report_threshold_reached(2, 3)
    assert report_threshold_reached(3, 3)
    assert not report_threshold_reached(10, 0)  # 0 switches hiding off


def test_ladder() -> None:
    assert suggest_sanction(1, []) is None
    assert suggest_sanction(2, []) == "warning"
    assert suggest_sanction(3, ["warning"]) == "premoderation"
    assert suggest_sanction(3, ["warning", "premoderation"]) == "suspension:1"
    every = ["warning", "premoderation", "suspension:1", "suspension:7", "ban"]
    assert suggest_sanction(9, every) == "ban"
    assert suggest_sanction(2, [], ladder=["suspension:3"]) == "suspension:3"
