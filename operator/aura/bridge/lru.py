"""`Lru`: a dict bounded to `size` entries that forgets the least recently written first.

The bridge's in-process memories (event ids seen, per-Agent freshness, early states) are
caches of what the apiserver records anyway: losing an entry costs a redundant check or
write, never a wrong one, so a fixed bound keeps memory flat under any traffic.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        """Store `value` as the most recent entry, evicting the oldest beyond `size`."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)
