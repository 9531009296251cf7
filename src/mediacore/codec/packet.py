"""EncodedPacket: one compressed unit with its timing, independent of PyAV."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class EncodedPacket:
    """A compressed audio or video packet.

    ``pts``/``dts``/``duration`` are in ``time_base`` units (1/sample_rate for
    audio, 1/90000 for video), the way RTP senders and muxers want them.
    ``meta`` holds extras such as the simulcast ``layer`` name.
    """

    data: bytes
    pts: int | None
    dts: int | None
    duration: int
    time_base: Fraction
    is_keyframe: bool
    codec: str  #: FFmpeg encoder name, e.g. "libopus", "libx264"
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def time_s(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base)
