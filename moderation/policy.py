"""Pure rules that turn evidence into a verdict. No Flask, no database: plain values in,
plain values out, so every rule is tested without an app."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Standing:
    """What the site knows about an author when they post."""

    premoderated: bool = False
    account_age_hours: float = 1e9
    published_count: int = 0


@dataclass(frozen=True)
class PolicyConfig:
    """A site's screening policy (from config; defaults chosen by cross-validation)."""

    # Hold when a linked signal reaches its threshold; None: use the model's own.
    hold_thresholds: Mapping[str, float] | None = None
    # Reject outright (ask the author to revise) at or above these; off unless enabled.
    reject_enabled: bool = False
    reject_thresholds: Mapping[str, float] | None = None
    # Hold the first posts of brand-new accounts? (0 = never)
    hold_first_posts: int = 0


@dataclass(frozen=True)
class Verdict:
    action: str  # "publish", "hold" or "reject"
    reason: str | None = None
    signal: str | None = None  # the signal that decided it
    score: float | None = None  # the rule-breaking score: highest linked signal
    extra: dict[str, float] = field(default_factory=dict)


def rule_breaking_score(
    scores: Mapping[str, float], linked: Iterable[str]
) -> tuple[str | None, float]:
    """The highest signal among those linked to a house rule, and which one it was."""
    best_name, best = None, 0.0
    for name in linked:
        value = scores.get(name)
        if value is not None and (best_name is None or value > best):
            best_name, best = name, value
    return best_name, best


def decide(
    scores: Mapping[str, float] | None,
    linked: Sequence[str],
    thresholds: Mapping[str, float],
    standing: Standing,
    config: PolicyConfig,
    reject_thresholds: Mapping[str, float] | None = None,
) -> Verdict:
    """Publish, hold or reject a post, from its scores and its author's standing.

    Order matters: a clear breach is rejected (when enabled) whoever posts it; then the
    author's standing (premoderation) holds everything; then any linked signal at its
    threshold holds the post.
    """
    scores = scores or {}
    signal, top = rule_breaking_score(scores, linked)
    hold_at = {**thresholds, **(config.hold_thresholds or {})}
    reject_at = {**(reject_thresholds or {}), **(config.reject_thresholds or {})}
    if config.reject_enabled:
        for name in linked:
            if name in scores and name in reject_at and scores[name] >= reject_at[name]:
                return Verdict("reject", "classifier", name, top)
    if standing.premoderated:
        return Verdict("hold", "premoderation", signal, top)
    for name in linked:
        if name in scores and name in hold_at and scores[name] >= hold_at[name]:
            return Verdict("hold", "classifier", name, top)
    if config.hold_first_posts and standing.published_count < config.hold_first_posts:
        return Verdict("hold", "new_account", signal, top)
    return Verdict("publish", None, signal, top)


def report_threshold_reached(distinct_reporters: int, threshold: int) -> bool:
    """Enough different readers reported a comment to hide it until a moderator looks."""
    return threshold > 0 and distinct_reporters >= threshold


DEFAULT_LADDER = ("warning", "premoderation", "suspension:1", "suspension:7", "ban")


def suggest_sanction(
    recent_withdrawals: int,
    sanctions_so_far: Sequence[str],
    ladder: Sequence[str] = DEFAULT_LADDER,
    min_withdrawals: int = 2,
) -> str | None:
    """The next step on the site's sanctions ladder, as a suggestion to the moderator.

    ``recent_withdrawals`` counts the author's comments withdrawn within the window; at
    ``min_withdrawals`` or more the next rung above the ones already used is suggested.
    Ladder entries are kinds, with ``:days`` for suspensions.
    """
    if recent_withdrawals < min_withdrawals:
        return None
    used = set(sanctions_so_far)
    for step in ladder:
        if step not in used:
            return step
    return ladder[-1]
