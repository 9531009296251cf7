"""Decoding: ``read_audio`` and the streaming per-stream decoder used by
``clean_media``."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from typing import Any

import av
import numpy as np

from mediacore.errors import FormatError, MediaError, ParameterError
from mediacore.io._av import audio_streams_or_raise, check_finite, error_text, frame_to_float, open_input
from mediacore.io.integrity import (
    StreamTally,
    check_packets,
    declared_duration,
    declared_length,
    fmt_seconds,
    truncated_error,
)

#: largest tail (in input samples) we are willing to trim as codec end padding
MAX_END_PADDING = 4608


class AudioStreamDecoder:
    """Decode one audio stream packet by packet into float32 (channels, n) blocks.

    Keeps the bookkeeping needed for an exact sample count: decoded total,
    presentation time of the first sample, and the end time implied by the
    packets (``pts + duration``).  Codec priming/padding that FFmpeg signals
    (skip-samples side data, Opus pre-skip, MP3 LAME gapless info, MP4 edit
    lists) is already removed by the decoder; AAC end padding in MP4 is not,
    so :meth:`exact_length` trims it using the last packet's duration.
    """

    def __init__(self, path: str, container: Any, stream: Any) -> None:
        self.path = path
        self.stream = stream
        self.tally = StreamTally(stream.index, "audio")
        self.index: int = stream.index
        self._stream_duration: int | None = stream.duration
        self._time_base: Fraction | None = stream.time_base
        self._stream_start: int | None = stream.start_time
        self._metadata: dict[str, str] = dict(stream.metadata)
        cc = stream.codec_context
        self.codec = cc.name
        self.sample_rate: int = int(cc.sample_rate)
        self.channels: int = int(cc.channels)
        self._header_valid = self.sample_rate > 0 and self.channels > 0
        self.layout: str = cc.layout.name
        self.sample_format: str = cc.format.name if cc.format is not None else ""
        self.bit_rate: int | None = int(cc.bit_rate) if cc.bit_rate else None
        self.container_format: str = container.format.name
        self.total = 0  # samples decoded so far (per channel)
        self.start_time: float | None = None  # seconds, pts of the first decoded sample
        self._pkt_end: Fraction | None = None
        self._rate_fixed = False
        self._max_frame = 0
        self._flushed = False
        self._fine_tb = False  # decided once the first frame gives the real rate
        self._last_pkt_timed = False
        fmt = self.container_format.split(",")
        # MP4/MOV is where FFmpeg leaves AAC end padding in place (edit-list end is not applied)
        self._trim_tail = "mp4" in fmt or "mov" in fmt

    @property
    def bits(self) -> int | str | None:
        """Sample depth the input codec keeps: the PCM width (8/16/24/32, ``"flt"``,
        ``"dbl"``), FLAC/ALAC bits per sample (from STREAMINFO / the ALAC cookie);
        None for lossy codecs."""
        return codec_bits(self.codec, self.stream.codec_context.extradata)

    # -- decoding ---------------------------------------------------------------
    def decode(self, packet: Any | None) -> list[np.ndarray]:
        """Decode one packet (``None`` or an empty packet flushes)."""
        if packet is not None and packet.size:
            self.tally.add(packet)
            if packet.pts is not None and packet.duration:
                end = (packet.pts + packet.duration) * packet.time_base
                if self._pkt_end is None or end > self._pkt_end:
                    self._pkt_end = end
                self._last_pkt_timed = True
            else:
                self._last_pkt_timed = False
        if packet is None or not packet.size:
            if self._flushed:
                return []
            self._flushed = True
        try:
            frames = self.stream.codec_context.decode(packet)
        except av.FFmpegError as exc:
            at = self.total / self.sample_rate if self.sample_rate else 0.0
            declared = declared_duration(self.path, self.container_format, self.stream)
            expected = (f"{fmt_seconds(declared[0])} of audio stream #{self.index} ({declared[1]})" if declared
                        else f"decodable audio in stream #{self.index}")
            raise truncated_error(self.path, expected, f"{at:.3f} s, then a decoder error: {error_text(exc)}") from exc
        out = []
        for frame in frames:
            if frame.samples == 0:
                continue
            self._check_params(frame)
            x = frame_to_float(frame)
            if x.dtype.kind == "f" and self.sample_format.rstrip("p") in ("flt", "dbl"):
                check_finite(x, self.total, f"{self.path} (audio stream #{self.index})")
            if self.start_time is None:
                if frame.time is not None:
                    self.start_time = float(frame.time)
                else:
                    st, tb = self._stream_start, self._time_base
                    self.start_time = float(st * tb) if st is not None and tb is not None else 0.0
            self.total += x.shape[1]
            self._max_frame = max(self._max_frame, x.shape[1])
            out.append(x)
        return out

    def _check_params(self, frame: Any) -> None:
        rate, ch = int(frame.sample_rate), int(frame.layout.nb_channels)
        if not self._rate_fixed:
            # the decoder's real output (e.g. HE-AAC doubles the header rate)
            self.sample_rate, self.channels, self.layout = rate, ch, frame.layout.name
            self.sample_format = frame.format.name
            tb = self._time_base
            self._fine_tb = tb is not None and tb <= Fraction(1, rate)
            self._rate_fixed = True
            return
        if rate != self.sample_rate or ch != self.channels:
            raise FormatError(
                f"{self.path}: audio stream #{self.index} changes format mid-stream at sample "
                f"{self.total}: expected {self.sample_rate} Hz x {self.channels} ch, got {rate} Hz x {ch} ch"
            )

    # -- bookkeeping --------------------------------------------------------------
    def exact_length(self) -> int:
        """Number of real samples: the decoded total minus trailing codec padding
        that the container's timestamps reveal (MP4/MOV only; only ever shortens,
        by at most one codec frame, only when timestamps have sample resolution
        and the last packet carries a duration)."""
        n = self.total
        if n == 0 or not (self._trim_tail and self._fine_tb and self._last_pkt_timed) or self._pkt_end is None:
            return n
        start = Fraction(self.start_time or 0.0).limit_denominator(10**9)
        expected = round((self._pkt_end - start) * self.sample_rate)
        excess = n - expected
        if 0 < excess <= min(MAX_END_PADDING, max(self._max_frame, 1)):
            return expected
        return n

    def check_not_empty(self) -> None:
        """FormatError for a valid but empty stream; MediaError if nothing decodable
        was found and the header is not valid either (junk the demuxer accepted)."""
        if self.total:
            return
        if not self._header_valid:
            raise MediaError(
                f"{self.path}: corrupt or not a media file: audio stream #{self.index} has no valid "
                f"header (sample rate {self.sample_rate} Hz, {self.channels} channels) and no decodable data"
            )
        raise FormatError(f"{self.path}: audio stream #{self.index} is empty: expected at least 1 sample, got 0")

    def check_complete(self) -> None:
        """MediaError if the demuxer flagged a packet corrupt, the MP4 sample table
        lists more packets than were read, or a reliable header (WAV data size,
        FLAC STREAMINFO, AIFF COMM, Matroska DURATION) promises more samples than
        were decoded (see :mod:`mediacore.io.integrity`)."""
        check_packets(self.path, self.container_format, self.stream, self.tally)
        declared = declared_length(self.path, self.container_format, self.codec, self.sample_rate,
                                   self._stream_duration, self._time_base, self._metadata, self.start_time,
                                   self._max_frame)
        if declared is None:
            return
        n, tol, where = declared
        if self.total < n - tol:
            rate = self.sample_rate
            raise truncated_error(
                self.path, f"{n} samples ({n / rate:.3f} s) of audio stream #{self.index} ({where})",
                f"{self.total} ({self.total / rate:.3f} s)")


def codec_bits(codec: str, extradata: bytes | None) -> int | str | None:
    """See :attr:`AudioStreamDecoder.bits`."""
    m = re.fullmatch(r"pcm_([suf])(8|16|24|32|64)(le|be|_planar)?", codec)
    if m:
        if m.group(1) == "f":
            return "flt" if m.group(2) == "32" else "dbl"
        return int(m.group(2))
    ed = bytes(extradata or b"")
    if codec == "flac":
        if ed[:4] == b"fLaC":
            ed = ed[8:]
        if len(ed) >= 18:
            return (((ed[12] & 1) << 4) | (ed[13] >> 4)) + 1
    if codec == "alac":
        if ed[4:8] == b"alac":
            ed = ed[12:]
        if len(ed) >= 6 and ed[5]:
            return int(ed[5])
    return None


def _select_stream(path: str, container: Any, stream: int) -> Any:
    streams = audio_streams_or_raise(container, path)
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)):
        raise ParameterError(f"stream must be an int (index among audio streams), got {stream!r}")
    if not 0 <= stream < len(streams):
        raise ParameterError(
            f"{path}: audio stream {stream} requested, but the file has {len(streams)} audio stream(s) "
            f"(valid: 0..{len(streams) - 1})"
        )
    return streams[int(stream)]


def read_audio(path: str | os.PathLike[str], *, stream: int = 0) -> tuple[np.ndarray, int]:
    """Decode one audio stream of any container PyAV can read.

    Returns ``(samples, sample_rate)`` with ``samples`` float32 of shape
    ``(channels, n)``.  Integer PCM is scaled by 1/32768 (int16) or 1/2**31
    (int32), so 16-bit WAV/FLAC round-trips bit-exactly through
    :func:`write_audio`.  ``stream`` indexes the *audio* streams (0 = first).

    Raises MediaError (missing / corrupt / truncated / no audio stream),
    FormatError (0 samples, NaN/Inf in a float file, format change mid-stream),
    ParameterError (bad ``stream``).
    """
    p = os.fspath(path)
    with open_input(p, complete=True) as container:
        s = _select_stream(p, container, stream)
        dec = AudioStreamDecoder(p, container, s)
        blocks: list[np.ndarray] = []
        try:
            for packet in container.demux(s):
                blocks.extend(dec.decode(packet))
            blocks.extend(dec.decode(None))
        except av.FFmpegError as exc:
            raise MediaError(
                f"{p}: corrupt or truncated (demux error after {dec.total} samples): {error_text(exc)}"
            ) from exc
        dec.check_not_empty()
        dec.check_complete()
    x = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    n = dec.exact_length()
    if n < x.shape[1]:
        x = x[:, :n]
    return np.ascontiguousarray(x), dec.sample_rate
