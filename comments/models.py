"""The conversation's data: readers and staff, articles, comments and their threads."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no time zones and hands back naive datetimes; PostgreSQL's ``timestamptz``
    hands back aware ones. This makes both behave like PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the readable value ("published"), not the Python name, and use a CHECK
    # constraint rather than a native PostgreSQL type so migrations stay simple.
    return Enum(
        cls,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        create_constraint=True,
        length=20,
        name=cls.__name__.lower(),
    )


class Role(enum.StrEnum):
    """Who someone is on the site; each role can do everything the ones before it can."""

    READER = "reader"
    MODERATOR = "moderator"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class CommentStatus(enum.StrEnum):
    PUBLISHED = "published"
    PENDING = "pending"  # held for review: visible to its author and moderators only
    WITHDRAWN = "withdrawn"  # removed by a moderator; text kept for the audit and appeals
    DELETED = "deleted"  # removed by its author


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(40))
    # casefolded display name: "Ann" and "ann" are the same commenter to readers.
    display_name_key: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.READER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Bumped on sign-out everywhere, password change or ban: sessions carrying an
    # older number are no longer valid.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    # Set by moderation when any sanction (a warning too) is imposed, and never cleared:
    # while it is false the account has no sanctions at all, so a post needs no sanctions
    # lookup and a queue page none for its authors. Nearly every commenter is in that case.
    has_sanctions: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    comments: Mapped[list[Comment]] = relationship(back_populates="author", lazy="raise")

    def get_id(self) -> str:
        # Flask-Login's "alternative token": the session names the user *and* the
        # session generation, so bumping session_version signs every session out.
        return f"{self.id}:{self.session_version}"

    def has_role(self, role: Role) -> bool:
        return self.role.at_least(role)

    def to_public(self) -> dict[str, Any]:
        return {"id": self.id, "display_name": self.display_name}

    def to_private(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "role": self.role.value,
            "created_at": isoformat(self.created_at),
        }


class Article(db.Model):
    __tablename__ = "articles"
    # The front page and the editors' desk: newest first, a page at a time.
    __table_args__ = (Index("ix_articles_created", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The newsroom's own stable key for the story (a slug or its CMS id).
    key: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(2000))
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    # Close automatically this many days after registration; None means the site default.
    auto_close_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Bumped on every change to the thread: the basis of ETags and cached pages.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The thread's published comments, and how many of them are top-level: kept by every
    # change to a comment's status, in the statement that bumps the version, so a thread
    # page, the front page and the editors' desk never count a thread (a viral one runs to
    # tens of thousands of comments). `flask articles recount` counts them again.
    published_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    published_top_level_count: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )

    def closes_at(self, site_default_days: int | None) -> datetime | None:
        """When comments close automatically, or None if they never do."""
        days = self.auto_close_days if self.auto_close_days is not None else site_default_days
        if not days or days <= 0:
            return None
        return self.created_at + timedelta(days=days)

    def accepts_comments(self, site_default_days: int | None, now: datetime | None = None) -> bool:
        """Open for posting: not closed by an editor and not past its automatic close."""
        if not self.is_open:
            return False
        # Called as Article.closes_at so a plain row with these columns works too.
        closes = Article.closes_at(self, site_default_days)
        return closes is None or (now or utcnow()) < closes


# The partial index's predicate, which a query must repeat word for word (SQLite proves a
# partial index usable only from the same terms, and PostgreSQL not from a bound parameter).
TOP_UNPUBLISHED = "parent_id IS NULL AND status <> 'published'"


class Comment(db.Model):
    __tablename__ = "comments"
    __table_args__ = (
        # Reading a thread: top-level comments of an article in order (a partial index, so
        # that PostgreSQL reads them in the page's order and stops at the page's end: it
        # does not treat "parent_id IS NULL" as fixing a column of a wider index, and sorted
        # every top-level comment of the thread for each page), then their replies.
        Index(
            "ix_comments_article_top_created",
            "article_id",
            "created_at",
            "id",
            postgresql_where=text("parent_id IS NULL"),
            sqlite_where=text("parent_id IS NULL"),
        ),
        Index("ix_comments_article_root", "article_id", "root_id"),
        # The thread's top-level comments that are not published (held, withdrawn,
        # deleted): a page's count of top-level comments is the article's counter of
        # published ones plus those of these that still show (as a placeholder over visible
        # replies, or to their own author). Published comments, nearly all, are not in it.
        Index(
            "ix_comments_article_top_unpublished",
            "article_id",
            postgresql_where=text(TOP_UNPUBLISHED),
            sqlite_where=text(TOP_UNPUBLISHED),
        ),
        # An author's recent comments (the repeat-post check) and, covered by the index alone,
        # their comments counted by status (the moderator's view of a commenter).
        Index("ix_comments_author_created_status", "author_id", "created_at", "status"),
        # The pending queue: held comments, oldest first; held_reason makes the index cover
        # the queue's filter, so the page and its (capped) count never touch the table.
        Index("ix_comments_status_created_held", "status", "created_at", "held_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), nullable=True
    )
    # The top-level comment this one belongs under (None for a top-level comment), so a
    # page of threads is read with one query instead of one per level.
    root_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), nullable=True
    )
    depth: Mapped[int] = mapped_column(Integer, default=0)
    body: Mapped[str] = mapped_column(Text)  # as the author wrote it
    body_html: Mapped[str] = mapped_column(Text)  # sanitised once, on write
    status: Mapped[CommentStatus] = mapped_column(
        _enum(CommentStatus), default=CommentStatus.PUBLISHED
    )
    # Why a comment is held: "classifier", "premoderation", "reports"...
    held_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The classifier's signals at the last write, and which model produced them.
    scores: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # highest linked signal
    model_version: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # For held comments: the terms that pushed the scores, for the moderator's queue.
    explanation: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Optimistic concurrency: every state change is "UPDATE ... WHERE version = seen".
    version: Mapped[int] = mapped_column(Integer, default=1)

    article: Mapped[Article] = relationship(lazy="joined", innerjoin=True)
    author: Mapped[User | None] = relationship(back_populates="comments", lazy="joined")


def public_user(user_id: int | None, display_name: str | None) -> dict[str, Any] | None:
    """User.to_public() from a Core row's columns; None for no user, as when the row's outer
    join found none (a real user's display_name is never null)."""
    if display_name is None:
        return None
    return {"id": user_id, "display_name": display_name}


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, the way the API shows every time."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
