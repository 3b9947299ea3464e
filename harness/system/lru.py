"""A least-recently-used cache that threads may share."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable


class LRU:
    """A dict of at most `size` entries that forgets the least recently used one; safe to share between
    threads.

    `make()` runs outside the lock, so a slow one holds up no other key. Two threads missing the same key
    may both make it; the first value stored is kept and every caller gets that one.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"an LRU cache holds at least one entry, got size {size}")
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def _hit(self, key: Hashable) -> tuple[bool, object]:
        """(True, value) with `key` made the most recently used, or (False, None); under the lock."""
        if key not in self._items:
            return False, None
        self._items.move_to_end(key)
        return True, self._items[key]

    def get(self, key: Hashable, make: Callable[[], object]) -> object:
        """The value of `key`, made by `make()` (and remembered) when absent."""
        with self._lock:
            found, value = self._hit(key)
        if found:
            return value
        made = make()
        with self._lock:
            found, value = self._hit(key)
            if found:  # another thread stored it meanwhile
                return value
            self._items[key] = made
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return made

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
