"""AudioFrame: a block of samples that knows its rate, timing and side results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import FormatError, SampleTypeError

_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}

#: the most channels a block may have, when nothing declared the channel count, and still
#: have fewer samples than channels; beyond it the block is taken for a transposed
#: (samples, channels) array, the layout soundfile and most libraries return
MAX_UNDECLARED_CHANNELS = 8


def as_float_block(samples: Any, owner: str, *, check_finite: bool = True) -> np.ndarray:
    """Return ``samples`` as a C-contiguous float32 array of shape (channels, n).

    Accepts float32, float64, int16 and int32 arrays, 1-D (mono) or 2-D
    (channels, samples).  Integers are scaled to [-1, 1).  ``owner`` names the
    stage or pipeline in error messages.
    """
    arr = np.asarray(samples)
    if arr.dtype in _INT_SCALE:
        arr = arr.astype(np.float32) * np.float32(1.0 / _INT_SCALE[arr.dtype])
    elif arr.dtype == np.float64 or arr.dtype == np.float32:
        arr = arr.astype(np.float32, copy=False)
    else:
        raise SampleTypeError(
            f"{owner}: expected samples of dtype float32, float64, int16 or int32, got {arr.dtype}"
        )
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim != 2:
        raise FormatError(
            f"{owner}: expected samples of shape (samples,) or (channels, samples), got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise FormatError(f"{owner}: expected at least 1 channel, got shape {arr.shape}")
    if check_finite and arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise FormatError(
            f"{owner}: expected finite samples, got {arr[bad[0], bad[1]]} at channel {bad[0]}, sample {bad[1]}"
        )
    return np.ascontiguousarray(arr)


def check_layout(owner: str, shape: tuple[int, int], num_channels: int | None) -> None:
    """Raise a FormatError unless a (channels, samples) block of ``shape`` fits ``num_channels``.

    The one rule for the channel axis of every stage and pipeline:

    * with a known channel count (declared, or fixed by the stream's first
      block) the first axis must equal it; when the *last* axis equals it
      instead, the message says to transpose;
    * with no known count, a block with more than
      :data:`MAX_UNDECLARED_CHANNELS` channels and fewer samples than
      channels is refused as an obviously transposed (samples, channels)
      array: (480, 2) or (48000, 2) is not 480 or 48000 streams.  A batch
      of more streams than that, fed in chunks shorter than the stream
      count, declares ``num_channels``.
    """
    c, n = shape
    if num_channels is not None:
        if c == num_channels:
            return
        if n == num_channels:
            raise FormatError(f"{owner}: expected {num_channels} channel(s) as (channels, samples), got shape "
                              f"{tuple(shape)} (it looks like (samples, channels): transpose with x.T)")
        raise FormatError(f"{owner}: expected {num_channels} channel(s), got {c}")
    if c > MAX_UNDECLARED_CHANNELS and c > n:
        raise FormatError(
            f"{owner}: expected shape (channels, samples), got shape {tuple(shape)}, which looks like "
            f"(samples, channels) (transpose with x.T, or declare num_channels={c} if these are {c} streams)")


@dataclass
class AudioFrame:
    """Samples plus timing and side results.

    Parameters
    ----------
    samples : float32 array, shape (channels, samples)
        Channels are independent streams unless a stage documents otherwise.
    sample_rate : int
        Hz.
    pts : int or None
        Presentation time of the first sample, in samples at ``sample_rate``.
    meta : dict
        Side results written by stages, for example ``speech_prob`` and
        ``speech`` (arrays of shape (channels, blocks)), ``gain_db``.
    """

    samples: np.ndarray
    sample_rate: int
    pts: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.samples = as_float_block(self.samples, "AudioFrame")
        if int(self.sample_rate) != self.sample_rate or self.sample_rate <= 0:
            raise FormatError(f"AudioFrame: expected a positive integer sample_rate, got {self.sample_rate}")
        self.sample_rate = int(self.sample_rate)

    @property
    def num_channels(self) -> int:
        return self.samples.shape[0]

    @property
    def num_samples(self) -> int:
        return self.samples.shape[1]

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate
