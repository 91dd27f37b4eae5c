"""The hand-off between two pipeline threads: one slot holding the newest item.

A live filter must show the newest frame, not work through a backlog: ``put`` replaces an item nobody took yet
(and counts it as dropped), ``take`` waits for an item. A queue of one that drops its oldest, never grows.
"""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    def __init__(self):
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0      # items replaced before anyone took them

    def put(self, item: T) -> bool:
        """Store ``item``; returns False when it replaced one that was never taken."""
        with self._cond:
            replaced = self._full
            self.dropped += replaced
            self._item, self._full = item, True
            self._cond.notify()
            return not replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout`` s; None on timeout or once closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
