"""A small in-process cache of rendered thread pages.

Keys carry the article's version, which lives in the database and is bumped by every change
to the thread, so a worker can never serve a stale page: after a post, edit, withdrawal or
closure on any worker or machine, the version differs and the old entry is simply never
asked for again (and ages out of the LRU).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from flask import Flask, current_app


class PageCache:
    """A thread-safe LRU holding at most ``capacity`` (0: keeps nothing), counted in entries,
    or in what ``weigh`` says each value costs: rendered pages here, whole responses on the
    fast read path (comments/fastread.py), recent posts' word shapes by their bytes for the
    repeat check (comments/services.py)."""

    def __init__(self, capacity: int, weigh: Callable[[Any], int] | None = None) -> None:
        self.capacity = capacity
        self.used = 0
        self._weigh = weigh
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any) -> None:
        if self.capacity <= 0:
            return
        cost = self._weigh(value) if self._weigh is not None else 1
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self._items[key] = (value, cost)
            self.used += cost
            while self.used > self.capacity and self._items:
                _, (_, freed) = self._items.popitem(last=False)
                self.used -= freed


def page_cache() -> PageCache:
    return current_app.extensions["parley.page_cache"]


def readers_seeing_all() -> PageCache:
    """Whether a signed-in reader's page of a thread at a version is everyone's page, by
    (article id, version, user id): small entries, kept apart from the pages so that many
    readers don't push the pages out."""
    return current_app.extensions["parley.readers_seeing_all"]


def init_app(app: Flask) -> None:
    entries = int(app.config["THREAD_CACHE_ENTRIES"])
    app.extensions["parley.page_cache"] = PageCache(entries)
    app.extensions["parley.readers_seeing_all"] = PageCache(8 * entries)
