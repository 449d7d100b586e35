"""A small in-process cache of rendered thread pages.

Keys carry the article's version, which lives in the database and is bumped by every change
to the thread, so a worker can never serve a stale page: after a post, edit, withdrawal or
closure on any worker or machine, the version differs and the old entry is simply never
asked for again (and ages out of the LRU).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from flask import Flask, current_app


class PageCache:
    """A thread-safe LRU of at most ``max_entries`` (0: keeps nothing): rendered pages here,
    whole responses on the fast read path (comments/fastread.py)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


def page_cache() -> PageCache:
    return current_app.extensions["parley.page_cache"]


def init_app(app: Flask) -> None:
    app.extensions["parley.page_cache"] = PageCache(app.config["THREAD_CACHE_ENTRIES"])
