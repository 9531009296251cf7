"""Jitter buffer: puts RTP packets back in sequence order and decides when one is lost.

Packets in order are released at once, so on a clean network the buffer adds
no delay.  When a sequence number is missing, the packets after it are held
until either the missing one arrives (reordering, released in order) or the
oldest held packet has waited ``max_wait_ms`` (or ``capacity`` packets are
held): then the gap is released as lost (``None``), for the decoder to
conceal.  A packet arriving after its slot was released is ``late`` and
dropped; one seen twice is a ``duplicate`` and dropped.  A jump of more than
``resync_packets`` sequence numbers (a restarted sender) starts over at the
new number instead of concealing thousands of packets.

There is no playout smoothing on purpose: a relay forwards, the receivers
downstream have their own jitter buffers, and holding in-order packets would
only add delay.

Sequence numbers are extended to 64 bits (RFC 3550 A.1 cycles), so the 16-bit
wrap at 65535 is invisible to the user.  Time is passed in (seconds, any
monotonic clock), so the buffer is deterministic and testable.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ...errors import ParameterError


class JitterBuffer:
    """Reorder and loss-detect one RTP stream (one SSRC)."""

    def __init__(self, *, max_wait_ms: float = 40.0, capacity: int = 50, resync_packets: int = 3000) -> None:
        if not 0.0 <= max_wait_ms <= 2000.0:
            raise ParameterError(f"JitterBuffer: expected max_wait_ms in [0, 2000], got {max_wait_ms!r}")
        if int(capacity) != capacity or capacity < 1:
            raise ParameterError(f"JitterBuffer: expected capacity >= 1 packets, got {capacity!r}")
        self.max_wait_s = max_wait_ms / 1000.0
        self.capacity = int(capacity)
        self.resync_packets = int(resync_packets)
        self.reset()

    def reset(self) -> None:
        self._next: int | None = None       # extended sequence number to release next
        self._highest: int | None = None
        self._held: dict[int, tuple[Any, float]] = {}
        self._released: OrderedDict[int, bool] = OrderedDict()  # recent slots: True = real, False = lost
        self.stats = {"received": 0, "released": 0, "lost": 0, "late": 0, "duplicates": 0, "reordered": 0,
                      "resyncs": 0, "max_held": 0}

    @property
    def held(self) -> int:
        return len(self._held)

    def extend(self, seq: int) -> int:
        """The extended sequence number of a 16-bit ``seq`` (nearest to the highest seen)."""
        if self._highest is None:
            return seq
        delta = (seq - self._highest) & 0xFFFF
        return self._highest + delta if delta < 0x8000 else self._highest - (0x10000 - delta)

    def push(self, seq: int, item: Any, now: float) -> None:
        """Add a packet (``item``) with 16-bit sequence number ``seq`` arriving at ``now`` seconds."""
        self.stats["received"] += 1
        ext = self.extend(seq)
        if self._next is None:
            self._next = self._highest = ext
        elif abs(ext - self._next) > self.resync_packets:
            # a restarted sender, not loss: release what is held and start over at the new number
            self.stats["resyncs"] += 1
            self._held.clear()
            self._released.clear()
            self._next = self._highest = ext
        if ext < self._next:
            real = self._released.get(ext)
            self.stats["duplicates" if real else "late"] += 1
            return
        if ext in self._held:
            self.stats["duplicates"] += 1
            return
        if ext < self._highest:
            self.stats["reordered"] += 1
        self._highest = max(self._highest, ext)
        self._held[ext] = (item, now)
        self.stats["max_held"] = max(self.stats["max_held"], len(self._held))

    def pop(self, now: float) -> list[tuple[int, Any]]:
        """Release what is ready at ``now``: ``(extended seq, item)`` in order, ``item=None`` for a lost packet."""
        out: list[tuple[int, Any]] = []
        while self._held:
            if self._next in self._held:
                item, _ = self._held.pop(self._next)
                out.append((self._next, item))
                self._mark(self._next, True)
            else:
                oldest = min(t for _, t in self._held.values())
                if now - oldest < self.max_wait_s and len(self._held) < self.capacity:
                    break  # the missing packet may still come
                out.append((self._next, None))
                self._mark(self._next, False)
            self._next += 1
        return out

    def next_deadline(self) -> float | None:
        """When a held gap will be declared lost (seconds, same clock as ``now``), or None."""
        if not self._held or self._next in self._held:
            return None
        return min(t for _, t in self._held.values()) + self.max_wait_s

    def flush(self) -> list[tuple[int, Any]]:
        """Release everything held, gaps as lost (end of stream)."""
        return self.pop(float("inf"))

    def _mark(self, ext: int, real: bool) -> None:
        self._released[ext] = real
        self.stats["released" if real else "lost"] += 1
        while len(self._released) > 1024:
            self._released.popitem(last=False)
