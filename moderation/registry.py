"""Which classifier model is active: the shipped one, or a site model trained from this
site's own moderation decisions. Every model ever activated is kept, so an earlier one can be
reactivated."""

from __future__ import annotations

import pathlib
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import JSON, Boolean, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from comments.extensions import db
from comments.models import UTCDateTime, isoformat, utcnow


class ClassifierModel(db.Model):
    __tablename__ = "classifier_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(120), unique=True)
    # Relative to the instance folder's models/, or absolute; "" for the shipped model.
    path: Mapped[str] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "path": self.path,
            "active": self.is_active,
            "created_at": isoformat(self.created_at),
            "metrics": self.metrics or {},
        }


def model_dir() -> pathlib.Path:
    path = current_app.config.get("MODEL_DIR") or str(
        pathlib.Path(current_app.instance_path) / "models"
    )
    return pathlib.Path(path)


def active_record() -> ClassifierModel | None:
    return db.session.scalar(select(ClassifierModel).where(ClassifierModel.is_active.is_(True)))


def active_model_path() -> pathlib.Path | None:
    """The active model's manifest path; None means the shipped model."""
    configured = current_app.config.get("MODEL_PATH")
    if configured:
        return pathlib.Path(configured)
    record = active_record()
    if record is None or not record.path:
        return None
    path = pathlib.Path(record.path)
    return path if path.is_absolute() else model_dir() / path


def activate(version: str) -> ClassifierModel:
    """Make ``version`` the active model (flushes); the others stay for reactivation."""
    record = db.session.scalar(select(ClassifierModel).where(ClassifierModel.version == version))
    if record is None:
        raise LookupError(version)
    db.session.execute(
        update(ClassifierModel).values(is_active=False).execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(ClassifierModel)
        .where(ClassifierModel.id == record.id)
        .values(is_active=True)
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()
    return record


def register(
    version: str, path: str, metrics: dict[str, Any] | None, active: bool
) -> ClassifierModel:
    record = ClassifierModel(version=version, path=path, metrics=metrics, created_at=utcnow())
    db.session.add(record)
    db.session.flush()
    if active:
        activate(version)
    return record
