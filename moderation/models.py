"""Moderation's records: house rules, reports, decisions, sanctions, notices and appeals."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from comments.extensions import db
from comments.models import Comment, User, UTCDateTime, _enum, isoformat, utcnow


class HouseRule(db.Model):
    """One of the site's house rules. Retired rules stay attached to past decisions."""

    __tablename__ = "house_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Classifier signals that suggest a comment breaks this rule.
    signals: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "title": self.title,
            "text": self.text,
            "position": self.position,
            "active": self.is_active,
            "signals": list(self.signals or []),
        }


class ReportOutcome(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"  # the comment was withdrawn
    REJECTED = "rejected"  # a moderator approved the comment


class Report(db.Model):
    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("comment_id", "reporter_id", name="uq_reports_comment_reporter"),
        Index("ix_reports_outcome_comment", "outcome", "comment_id"),
        Index("ix_reports_reporter_created", "reporter_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    reporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    rule_id: Mapped[int] = mapped_column(ForeignKey("house_rules.id"))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[ReportOutcome] = mapped_column(_enum(ReportOutcome), default=ReportOutcome.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    rule: Mapped[HouseRule] = relationship(lazy="joined")
    reporter: Mapped[User | None] = relationship(lazy="joined")
    comment: Mapped[Comment] = relationship(lazy="select")

    def to_json(self, *, for_moderator: bool = False) -> dict[str, Any]:
        out = report_json(self, self.rule.code, self.rule.title)
        if for_moderator:
            out["reporter"] = self.reporter.to_public() if self.reporter else None
        return out


def report_json(report: Any, rule_code: str, rule_title: str) -> dict[str, Any]:
    """A report as the API shows it; ``report`` a Report or a Core row of its columns."""
    return {
        "id": report.id,
        "comment_id": report.comment_id,
        "rule": rule_code,
        "rule_title": rule_title,
        "note": report.note,
        "outcome": report.outcome.value,
        "created_at": isoformat(report.created_at),
        "resolved_at": isoformat(report.resolved_at),
    }


class Action(enum.StrEnum):
    """What a decision did. The first four act on a comment, the rest on a commenter."""

    APPROVE = "approve"
    WITHDRAW = "withdraw"
    REINSTATE = "reinstate"
    HIDE = "hide"  # automatic: enough readers reported it
    WARNING = "warning"
    PREMODERATION = "premoderation"
    SUSPENSION = "suspension"
    BAN = "ban"
    LIFT = "lift"  # a sanction lifted early


SANCTION_ACTIONS = (Action.WARNING, Action.PREMODERATION, Action.SUSPENSION, Action.BAN)
# Decisions that take something away from a user: they get a notice and may appeal.
APPEALABLE = (Action.WITHDRAW, *SANCTION_ACTIONS)


class Decision(db.Model):
    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_subject_created", "subject_user_id", "created_at"),
        Index("ix_decisions_comment", "comment_id"),
        Index("ix_decisions_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[Action] = mapped_column(_enum(Action))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="SET NULL"), nullable=True
    )
    subject_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    moderator_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("house_rules.id"), nullable=True)
    sanction_id: Mapped[int | None] = mapped_column(
        ForeignKey("sanctions.id", ondelete="SET NULL"), nullable=True
    )
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when an appeal reversed this decision.
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    rule: Mapped[HouseRule | None] = relationship(lazy="joined")
    moderator: Mapped[User | None] = relationship(foreign_keys=[moderator_id], lazy="joined")

    def to_json(self) -> dict[str, Any]:
        return decision_json(
            self,
            self.moderator.to_public() if self.moderator else None,
            self.rule.code if self.rule else None,
            self.rule.title if self.rule else None,
        )


def decision_json(
    decision: Any, moderator: dict[str, Any] | None, rule_code: str | None, rule_title: str | None
) -> dict[str, Any]:
    """A decision as the API shows it; ``decision`` a Decision or a Core row of its columns."""
    return {
        "id": decision.id,
        "action": decision.action.value,
        "comment_id": decision.comment_id,
        "user_id": decision.subject_user_id,
        "moderator": moderator,
        "rule": rule_code,
        "rule_title": rule_title,
        "note": decision.note,
        "automatic": decision.is_automatic,
        "sanction_id": decision.sanction_id,
        "reversed_at": isoformat(decision.reversed_at),
        "created_at": isoformat(decision.created_at),
    }


class SanctionKind(enum.StrEnum):
    WARNING = "warning"
    PREMODERATION = "premoderation"  # every post held for review
    SUSPENSION = "suspension"  # no posting until ends_at
    BAN = "ban"  # no posting


class Sanction(db.Model):
    __tablename__ = "sanctions"
    __table_args__ = (Index("ix_sanctions_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    kind: Mapped[SanctionKind] = mapped_column(_enum(SanctionKind))
    rule_id: Mapped[int] = mapped_column(ForeignKey("house_rules.id"))
    reason: Mapped[str] = mapped_column(Text)
    moderator_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # None: until lifted (premoderation, ban); warnings end at once.
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lifted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )

    rule: Mapped[HouseRule] = relationship(lazy="joined")

    def is_active(self, now: datetime | None = None) -> bool:
        """In force now: not lifted, not expired, and not a mere warning."""
        if self.kind == SanctionKind.WARNING or self.lifted_at is not None:
            return False
        return self.ends_at is None or (now or utcnow()) < self.ends_at

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "kind": self.kind.value,
            "rule": self.rule.code,
            "reason": self.reason,
            "created_at": isoformat(self.created_at),
            "ends_at": isoformat(self.ends_at),
            "lifted_at": isoformat(self.lifted_at),
            "active": self.is_active(),
        }


class Notice(db.Model):
    """A statement of reasons to a user: what was decided about them, why, how to appeal."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))  # "decision", "appeal_outcome", "sanction_lifted"
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("decisions.id", ondelete="SET NULL"), nullable=True
    )
    appeal_id: Mapped[int | None] = mapped_column(
        ForeignKey("appeals.id", ondelete="SET NULL"), nullable=True
    )
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    decision: Mapped[Decision | None] = relationship(lazy="joined")


class AppealStatus(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    REVERSED = "reversed"


class Appeal(db.Model):
    __tablename__ = "appeals"
    __table_args__ = (Index("ix_appeals_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # One appeal per decision, enforced by the database too.
    decision_id: Mapped[int] = mapped_column(
        ForeignKey("decisions.id", ondelete="CASCADE"), unique=True
    )
    appellant_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    statement: Mapped[str] = mapped_column(Text)
    status: Mapped[AppealStatus] = mapped_column(_enum(AppealStatus), default=AppealStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    outcome_note: Mapped[str | None] = mapped_column(Text, nullable=True)

    decision: Mapped[Decision] = relationship(lazy="joined")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "decision_id": self.decision_id,
            "statement": self.statement,
            "status": self.status.value,
            "created_at": isoformat(self.created_at),
            "decided_at": isoformat(self.decided_at),
            "outcome_note": self.outcome_note,
        }
