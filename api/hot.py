"""A small in-process LRU of encoded response bodies: the hottest answers skip Redis entirely.

Every key names the model version it was computed with (``reco_key``; a ``LoadedModel``'s
own memo for ``/similar``), and an answer is a pure function of its key: an entry can never
be another version's body. A reload that changes the version clears it anyway (the old keys
would only hold memory). Used on the event loop's thread only: no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

# ~1.5 KB per /recommend body at top_n=10: about 6 MB when full
HOT_ENTRIES = 4096


class HotCache:
    """At most ``size`` bodies; the least recently used goes first (``size`` 0: disabled)."""

    def __init__(self, size: int = HOT_ENTRIES) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0, not {size}")
        self.size = size
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        body = self._bodies.get(key)
        if body is not None:
            self._bodies.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        if not self.size:
            return
        self._bodies[key] = body
        self._bodies.move_to_end(key)
        if len(self._bodies) > self.size:
            self._bodies.popitem(last=False)

    def clear(self) -> None:
        self._bodies.clear()

    def __len__(self) -> int:
        return len(self._bodies)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._bodies
