"""Reader pages: server-rendered HTML over the same services as the API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("views", __name__)
