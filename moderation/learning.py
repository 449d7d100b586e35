"""Learning from moderators: every approve and withdraw decision becomes a labelled example,
and `flask moderation retrain` fine-tunes a candidate on them, compares it with the active
model on decisions it never saw, and activates it only if it is no worse."""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score
from sqlalchemy import select

from comments.extensions import db
from comments.models import Comment

from . import classifier, registry
from .models import Action, Decision, HouseRule


@dataclass(frozen=True)
class Example:
    comment_id: int
    text: str
    signal: str
    label: int


def decision_examples() -> list[Example]:
    """One example per (comment, signal), from the latest standing decision on the comment.

    A withdrawal citing a rule says "this breaks it": label 1 for the rule's signals. An
    approval (or a reinstatement, or a withdrawal reversed on appeal) says "this is fine":
    label 0 for every signal linked to an active rule.
    """
    linked = sorted(
        {
            s
            for rule in db.session.scalars(select(HouseRule).where(HouseRule.is_active.is_(True)))
            for s in (rule.signals or [])
        }
    )
    rows = db.session.execute(
        select(Decision, Comment.body)
        .join(Comment, Comment.id == Decision.comment_id)
        .where(Decision.action.in_((Action.APPROVE, Action.WITHDRAW, Action.REINSTATE)))
        .order_by(Decision.id)
    ).all()
    latest: dict[int, tuple[Decision, str]] = {}
    for decision, body in rows:
        latest[decision.comment_id] = (decision, body)  # type: ignore[index]
    examples = []
    for comment_id, (decision, body) in sorted(latest.items()):
        breaks = decision.action == Action.WITHDRAW and decision.reversed_at is None
        signals = (decision.rule.signals or []) if breaks and decision.rule else linked
        for signal in signals:
            examples.append(Example(comment_id, body, signal, 1 if breaks else 0))
    return examples


def held_back(comment_id: int, share: float = 0.25) -> bool:
    """A stable split: the same comments are always held back for evaluation."""
    digest = hashlib.sha256(f"parley-holdout:{comment_id}".encode()).digest()
    return digest[0] / 256 < share


def evaluate(model: Any, examples: Sequence[Example]) -> dict[str, Any]:
    """Per-signal figures on labelled examples, and one number to compare models by: the
    mean log loss (lower is better), which works even where a signal saw one class only."""
    by_signal: dict[str, list[Example]] = {}
    for ex in examples:
        by_signal.setdefault(ex.signal, []).append(ex)
    out: dict[str, Any] = {"signals": {}, "n": len(examples)}
    losses = []
    for signal, items in sorted(by_signal.items()):
        y = np.array([e.label for e in items])
        p = np.clip(model.signal_scores([e.text for e in items], signal), 1e-6, 1 - 1e-6)
        loss = float(log_loss(y, p, labels=[0, 1]))
        figures: dict[str, Any] = {"n": len(items), "positive": int(y.sum()), "log_loss": loss}
        if 0 < y.sum() < len(y):
            figures["auc"] = float(roc_auc_score(y, p))
        out["signals"][signal] = figures
        losses.append(loss)
    out["mean_log_loss"] = float(np.mean(losses)) if losses else None
    return out


def retrain(
    current: Any,
    base_data: Sequence[pathlib.Path] = (),
    seed: int = 0,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train a candidate from this site's decisions (and base sets, if given), compare it
    with ``current`` on held-back decisions, save it, and activate it if it is no worse."""
    say = progress or (lambda _msg: None)
    examples = decision_examples()
    train = [e for e in examples if not held_back(e.comment_id)]
    test = [e for e in examples if held_back(e.comment_id)]
    say(
        f"{len(examples)} labelled examples from moderators' decisions "
        f"({len(train)} to learn from, {len(test)} held back)"
    )
    if not train:
        raise ValueError("No moderator decisions to learn from yet.")
    start = classifier.train(list(base_data), seed=seed, progress=say) if base_data else current
    candidate = classifier.fine_tune(start, [(e.text, e.signal, e.label) for e in train], seed=seed)
    before = evaluate(current, test) if test else None
    after = evaluate(candidate, test) if test else None
    no_worse = bool(
        before
        and after
        and before["mean_log_loss"] is not None
        and after["mean_log_loss"] <= before["mean_log_loss"]
    )
    out_dir = registry.model_dir() / candidate.version
    out_dir.mkdir(parents=True, exist_ok=True)
    checksum = classifier.save(candidate, out_dir / "model.json")
    activate = no_worse or force
    metrics = {
        "held_back": after,
        "previous": before,
        "previous_version": current.version,
        "examples": len(examples),
        "sha256": checksum,
    }
    registry.register(candidate.version, f"{candidate.version}/model.json", metrics, activate)
    return {
        "version": candidate.version,
        "activated": activate,
        "no_worse": no_worse,
        "current": before,
        "candidate": after,
        "path": str(out_dir / "model.json"),
    }
