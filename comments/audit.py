"""The audit log: an append-only record of every staff act (who, when, what, on what, why).

It lives here, beside the accounts, because editors' acts on articles are recorded as well
as moderators' decisions; nothing in the app updates or deletes an entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, insert
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db
from .models import User, UTCDateTime, isoformat, utcnow


class AuditEntry(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor_at", "actor_id", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # Kept when the account is deleted: the id stays, the person goes.
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    actor_name: Mapped[str] = mapped_column(String(80))  # "system" for automatic acts
    action: Mapped[str] = mapped_column(String(60))  # e.g. "comment.withdraw"
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(200))
    rule_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": isoformat(self.at),
            "actor": {"id": self.actor_id, "display_name": self.actor_name},
            "action": self.action,
            "target": {"type": self.target_type, "id": self.target_id},
            "rule": self.rule_code,
            "reason": self.reason,
            "details": self.details or {},
        }


_INSERT_ENTRY = insert(AuditEntry.__table__)


def record(
    actor: User | None,
    action: str,
    target_type: str,
    target_id: Any,
    details: dict[str, Any] | None = None,
    *,
    rule_code: str | None = None,
    reason: str | None = None,
) -> None:
    """Append one entry, in the transaction of the act it records: the caller commits both.

    What the act has pending is flushed first, then the entry is one Core INSERT (nothing
    reads an entry back in the request that writes it, and the unit of work's flush of a
    new AuditEntry cost more than the insert)."""
    session = db.session
    session.flush()
    session.connection().execute(
        _INSERT_ENTRY,
        entry_values(actor, action, target_type, target_id, details, rule_code, reason),
    )


def entry_values(
    actor: User | None,
    action: str,
    target_type: str,
    target_id: Any,
    details: dict[str, Any] | None,
    rule_code: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """An entry's columns, as record() writes them (and a statement that writes its entry
    itself binds them: moderation's one-statement decision on PostgreSQL)."""
    return {
        "actor_id": actor.id if actor is not None else None,
        "actor_name": actor.display_name if actor is not None else "system",
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "rule_code": rule_code,
        "reason": reason,
        "details": details,
        "at": utcnow(),
    }
