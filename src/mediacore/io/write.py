"""Encoding: ``write_audio`` and the streaming per-stream encoder used by
``clean_media``."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import av
import numpy as np

from mediacore.errors import FormatError, MediaError, ParameterError, SampleTypeError
from mediacore.io._av import (
    DEFAULT_BITRATE_PER_CHANNEL,
    LOSSY_ENCODERS,
    check_finite,
    error_text,
    float_to_frame,
    frame_to_float,
    layout_name,
    output_format,
    parse_bitrate,
    resolve_codec,
)
from mediacore.io.atomic import atomic_output

#: output muxers that cannot carry the encoder's priming (no edit list, pre-skip or gapless tag)
NO_PRIMING_MUXERS = {"adts", "avi", "mpegts"}

#: frame size used for encoders that accept any frame size (PCM, ...)
VARIABLE_FRAME_SIZE = 4096

_FORMAT_PREFERENCE = ("fltp", "flt", "s32p", "s32", "s16p", "s16", "dblp", "dbl", "u8p", "u8")

MAX_CHANNELS = 64


class _Fifo:
    """A (channels, n) float32 FIFO built from a deque of blocks."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._blocks: deque[np.ndarray] = deque()
        self.size = 0

    def push(self, x: np.ndarray) -> None:
        if x.shape[1]:
            self._blocks.append(x)
            self.size += x.shape[1]

    def pop(self, n: int) -> np.ndarray:
        n = min(n, self.size)
        parts, need = [], n
        while need:
            b = self._blocks[0]
            if b.shape[1] <= need:
                parts.append(self._blocks.popleft())
                need -= b.shape[1]
            else:
                parts.append(b[:, :need])
                self._blocks[0] = b[:, need:]
                need = 0
        self.size -= n
        if len(parts) == 1:
            return np.ascontiguousarray(parts[0])
        if not parts:
            return np.zeros((self.channels, 0), np.float32)
        return np.concatenate(parts, axis=1)

    def truncate(self, n: int) -> None:
        """Keep only the first n samples."""
        if n >= self.size:
            return
        keep = self.pop(max(n, 0))
        self._blocks.clear()
        self.size = 0
        self.push(keep)


def choose_rate(codec: Any, rate: int) -> int:
    """The rate the encoder will run at: *rate* if supported, else libopus 48 kHz,
    else the smallest supported rate above (or the largest below) it."""
    rates = codec.audio_rates
    if not rates or rate in rates:
        return rate
    if codec.name == "libopus":
        return 48000
    higher = sorted(r for r in rates if r >= rate)
    return higher[0] if higher else max(rates)


def choose_format(codec: Any, bits: int | str | None = None) -> tuple[str, str, dict[str, str]]:
    """(FFmpeg sample format, conversion format, encoder options) for an encoder.

    The conversion format differs only for 24-bit audio, which FFmpeg carries
    in s32 (``"s24"``: values rounded to 24 bits in the top bits).  FLAC and
    ALAC keep the input's integer depth *bits* (16 when unknown or lossy);
    encoders FFmpeg marks experimental get ``strict=experimental``."""
    formats = [f.name for f in (codec.audio_formats or ())]
    options = {"strict": "experimental"} if getattr(codec, "experimental", False) else {}
    if codec.name in ("pcm_s24le", "pcm_s24be", "pcm_s24daud"):
        return formats[0], "s24", options
    if codec.name in ("flac", "alac"):
        planar = codec.name == "alac"
        wide = "s32p" if planar else "s32"
        if isinstance(bits, int) and bits > 16 and wide in formats:
            if bits > 24:
                options.update(bits_per_raw_sample="32", strict="experimental")
                return wide, wide, options
            options["bits_per_raw_sample"] = "24"
            return wide, "s24p" if planar else "s24", options
        narrow = "s16p" if planar else "s16"
        if narrow in formats:
            return narrow, narrow, options
    for f in _FORMAT_PREFERENCE:
        if f in formats:
            return f, f, options
    if formats:
        return formats[0], formats[0], options
    return "fltp", "fltp", options


def encoder_priming(codec: Any, rate: int, fmt: str, layout: str, bit_rate: int | None,
                    options: dict[str, str]) -> int:
    """Priming samples *codec* puts in front of the signal (the negative pts of its
    first packet; 1024 for AAC, 1105 for LAME), measured on a scratch encoder."""
    cc = av.CodecContext.create(codec)
    cc.sample_rate, cc.format, cc.layout, cc.time_base = rate, fmt, layout, Fraction(1, rate)
    if bit_rate:
        cc.bit_rate = bit_rate
    if options:
        cc.options = dict(options)
    cc.open()
    n = int(cc.frame_size) or VARIABLE_FRAME_SIZE
    silence = np.zeros((av.AudioLayout(layout).nb_channels, n), np.float32)
    for i in range(8):
        frame = float_to_frame(silence, fmt, layout, rate)
        frame.pts, frame.time_base = i * n, Fraction(1, rate)
        for packet in cc.encode(frame):
            return max(0, -int(packet.pts)) if packet.pts is not None else 0
    return 0


def encoder_problem(codec_name: str, *, rate: int, channels: int, layout: str | None = None,
                    bits: int | str | None = None) -> str | None:
    """Why *codec_name* cannot encode *channels* at *rate* Hz in this FFmpeg build
    (its own words), or None if it can; tried on a scratch codec context, so no
    output stream is added.  Like :class:`AudioStreamEncoder`, an input channel
    layout the encoder rejects is retried with the default one."""
    problem = None
    for lay in dict.fromkeys([layout_name(channels, layout), layout_name(channels)]):
        try:
            codec = av.Codec(codec_name, "w")
            cc = av.CodecContext.create(codec)
            out_rate = choose_rate(codec, rate)
            cc.sample_rate = out_rate
            fmt, _conv, options = choose_format(codec, bits)
            cc.format = fmt
            cc.time_base = Fraction(1, out_rate)
            cc.layout = lay
            if codec.name in LOSSY_ENCODERS:
                cc.bit_rate = default_bitrate(codec.name, channels)
            if options:
                cc.options = dict(options)
            cc.open()
            return None
        except (av.FFmpegError, ValueError) as exc:
            problem = problem or f"{codec_name}: {error_text(exc)}"
    return problem


def default_bitrate(codec_name: str, channels: int) -> int | None:
    per = DEFAULT_BITRATE_PER_CHANNEL.get(codec_name)
    if per is None:
        return None
    return per * min(channels, 2) + (per // 2) * max(channels - 2, 0)


class AudioStreamEncoder:
    """Encode float32 (channels, n) blocks into one output stream.

    Handles resampling to a rate the encoder supports (swresample through
    :class:`av.AudioResampler`), rechunking into codec frames, sample-format
    conversion, presentation timestamps (starting at ``start_time``) and an
    exact final length: :meth:`finish` cuts or zero-pads to ``total``.

    Containers that cannot tell a decoder how many priming samples the encoder
    put in front (ADTS, AVI, MPEG-TS: :data:`NO_PRIMING_MUXERS`) would come
    back that much longer and later; there the first ``priming`` samples are
    dropped instead, so the decoded output has the input's length and timing
    (what the decoder plays in their place is the encoder's own start-up).

    ``holdback`` samples (at the encoder rate) are kept unencoded until
    :meth:`finish`, so the final length can still be cut by that much.
    """

    def __init__(
        self,
        container: Any,
        codec_name: str,
        *,
        in_rate: int,
        channels: int,
        out_rate: int | None = None,
        bitrate: int | None = None,
        layout: str | None = None,
        holdback: int = 0,
        bits: int | str | None = None,
        what: str = "output",
    ) -> None:
        self.what = what
        codec = av.Codec(codec_name, "w")
        self.codec_name = codec.name
        self.in_rate = int(in_rate)
        self.rate = choose_rate(codec, int(out_rate or in_rate))
        self.channels = int(channels)
        self.stream = container.add_stream(codec.name, rate=self.rate)
        cc = self.stream.codec_context
        fmt, self._conv_fmt, options = choose_format(codec, bits)
        cc.format = fmt
        if options:
            cc.options = dict(options)
        cc.time_base = Fraction(1, self.rate)
        self.stream.time_base = Fraction(1, self.rate)
        if codec.name in LOSSY_ENCODERS:
            self.bit_rate = bitrate or default_bitrate(codec.name, self.channels)
            cc.bit_rate = self.bit_rate
        else:
            self.bit_rate = None
        self.layout = layout_name(self.channels, layout)
        cc.layout = self.layout
        try:
            cc.open()
        except av.FFmpegError:
            default = layout_name(self.channels)
            if default == self.layout:
                raise
            # the encoder rejected the input's channel layout; use the default order
            self.layout = default
            cc.layout = default
            cc.open()
        self.frame_size = int(cc.frame_size) or VARIABLE_FRAME_SIZE
        self._fmt = fmt
        self._tb = Fraction(1, self.rate)
        self._fifo = _Fifo(self.channels)
        self._holdback = max(int(holdback), 0)
        self._resampler = None
        if self.rate != self.in_rate:
            self._resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self._in_count = 0  # samples given to the resampler
        self.pts0 = 0
        self.written = 0  # samples sent to the encoder
        #: samples still to drop from the start (encoder priming the container cannot signal)
        self.priming = 0
        if container.format.name in NO_PRIMING_MUXERS:
            self.priming = encoder_priming(codec, self.rate, fmt, self.layout, self.bit_rate, options)
        self._to_skip = self.priming
        self.packets = 0
        self._container = container

    def set_start_time(self, seconds: float) -> None:
        """Presentation time of the first sample (call before the first write)."""
        self.pts0 = int(round(seconds * self.rate))

    # -- input --------------------------------------------------------------------
    def write(self, x: np.ndarray) -> None:
        if x.shape[1] == 0:
            return
        if self._resampler is not None:
            x = self._resample(x)
        self._push(x)
        self._drain(self._holdback)

    def _push(self, x: np.ndarray) -> None:
        if self._to_skip:
            k = min(self._to_skip, x.shape[1])
            x = x[:, k:]
            self._to_skip -= k
        self._fifo.push(x)

    @property
    def delivered(self) -> int:
        """Samples of the output so far: encoded ones plus the priming dropped in their place."""
        return self.written + self.priming - self._to_skip

    def _resample(self, x: np.ndarray | None) -> np.ndarray:
        if x is None:
            frames = self._resampler.resample(None)
        else:
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x, np.float32), format="fltp", layout=self.layout)
            f.sample_rate = self.in_rate
            f.pts = self._in_count
            f.time_base = Fraction(1, self.in_rate)
            self._in_count += x.shape[1]
            frames = self._resampler.resample(f)
        parts = [frame_to_float(fr) for fr in frames if fr is not None and fr.samples]
        if not parts:
            return np.zeros((self.channels, 0), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _drain(self, keep: int) -> None:
        fs = self.frame_size
        while self._fifo.size - keep >= fs:
            self._encode(self._fifo.pop(fs))

    def _encode(self, chunk: np.ndarray | None) -> None:
        if chunk is None:
            packets = self.stream.encode(None)
        else:
            frame = float_to_frame(chunk, self._conv_fmt, self.layout, self.rate)
            frame.pts = self.pts0 + self.priming + self.written
            frame.time_base = self._tb
            self.written += chunk.shape[1]
            packets = self.stream.encode(frame)
        if packets:
            self.packets += len(packets)
            self._container.mux(packets)

    def finish(self, total: int | None = None) -> int:
        """Flush; cut or zero-pad to *total* samples (encoder rate) if given.
        Returns the number of samples encoded."""
        if self._resampler is not None:
            self._push(self._resample(None))
        if total is not None:
            have = self.delivered + self._fifo.size
            if have > total:
                self._fifo.truncate(total - self.delivered)
            elif have < total:
                self._push(np.zeros((self.channels, total - have), np.float32))
        self._drain(0)
        if self._fifo.size:
            self._encode(self._fifo.pop(self._fifo.size))
        self._encode(None)
        return self.delivered


def _validate_samples(samples: Any, where: str) -> np.ndarray:
    if not isinstance(samples, np.ndarray):
        raise SampleTypeError(f"{where}: samples must be a numpy array (channels, n), got {type(samples).__name__}")
    if samples.dtype.kind != "f":
        raise SampleTypeError(
            f"{where}: samples must be float (float32/float64 in [-1, 1]), got dtype {samples.dtype}"
        )
    x = samples
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise FormatError(f"{where}: samples must have shape (channels, n), got shape {samples.shape}")
    if not 1 <= x.shape[0] <= MAX_CHANNELS:
        hint = " (did you pass (n, channels)? transpose it)" if x.shape[1] <= MAX_CHANNELS else ""
        raise FormatError(
            f"{where}: expected 1..{MAX_CHANNELS} channels in shape (channels, n), got shape {samples.shape}{hint}"
        )
    if x.shape[1] == 0:
        raise FormatError(f"{where}: samples are empty: expected at least 1 sample, got shape {samples.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    check_finite(x, 0, where)
    return x


def _validate_rate(rate: Any, where: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise FormatError(f"{where}: sample_rate must be an int in Hz, got {rate!r}")
    if not 1000 <= int(rate) <= 768_000:
        raise FormatError(f"{where}: sample_rate must be 1000..768000 Hz, got {rate}")
    return int(rate)


def open_output(path: str, muxer: str, *, movie_timescale: int | None = None) -> Any:
    options = {}
    if movie_timescale and muxer in ("mp4", "mov", "ipod"):
        # exact edit-list durations (the default timescale is 1 ms)
        options["movie_timescale"] = str(movie_timescale)
    try:
        return av.open(path, "w", format=muxer, container_options=options or None)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"{path}: cannot create {muxer} output: {exc}") from exc


@contextmanager
def output_container(path: str, muxer: str, *, movie_timescale: int | None = None, what: str,
                     file_desc: str = "the file") -> Iterator[Any]:
    """``open_output(path, ...)``, closed on leaving the block.

    If the block raises, the container is closed quietly and the exception
    propagates; otherwise it is closed (trailer written) and a failure there
    is a MediaError "{what}: error finalizing {file_desc}: ...".
    """
    oc = open_output(path, muxer, movie_timescale=movie_timescale)
    try:
        yield oc
    except BaseException:
        _close_quietly(oc)
        raise
    try:
        oc.close()
    except av.FFmpegError as exc:
        raise MediaError(f"{what}: error finalizing {file_desc}: {exc}") from exc


def pick_codec_for(path: str, codec: str | None) -> tuple[str, str]:
    """(muxer, encoder) for write_audio."""
    muxer, default_enc, _ = output_format(path)
    enc = resolve_codec(codec) if codec is not None else default_enc
    if muxer == "wav" and not enc.startswith("pcm_"):
        raise ParameterError(f"{path}: .wav holds PCM only; got codec {codec!r} (use 'pcm_s16le', 'pcm_s24le' or 'float')")
    return muxer, enc


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    codec: str | None = None,
    bitrate: int | str | None = None,
) -> None:
    """Encode ``samples`` (float, shape (channels, n); 1-D = mono) to *path*.

    The format comes from the extension: ``.wav`` (16-bit PCM by default;
    ``codec='pcm_s24le'`` or ``'float'`` for 24-bit / float32), ``.flac``
    (16-bit), ``.opus``/``.ogg`` (libopus, always 48 kHz: other rates are
    resampled), ``.m4a`` (AAC), ``.mp3`` (LAME), ``.mka``.  ``bitrate`` (bit/s
    or '128k') applies to lossy codecs.  Values are clipped to [-1, 1) for
    integer formats.  The output is written atomically: temporary file in the
    same directory, then ``os.replace``; nothing is left behind on error.
    The encoded length is exactly ``round(n * out_rate / sample_rate)``
    samples (lossy decoders may still add codec padding a reader must trim).
    """
    p = os.fspath(path)
    x = _validate_samples(samples, p)
    rate = _validate_rate(sample_rate, p)
    muxer, enc = pick_codec_for(p, codec)
    br = parse_bitrate(bitrate)
    channels, n = x.shape
    with atomic_output(p) as tmp, output_container(tmp, muxer, movie_timescale=rate, what=p) as oc:
        try:
            encoder = AudioStreamEncoder(oc, enc, in_rate=rate, channels=channels, bitrate=br, what=p)
        except ValueError as exc:
            raise ParameterError(f"{p}: {exc}") from exc
        except av.FFmpegError as exc:
            raise ParameterError(
                f"{p}: encoder {enc} rejects {channels} ch at {rate} Hz: {exc}"
            ) from exc
        total = round(n * encoder.rate / rate)
        step = 1 << 16
        for i in range(0, n, step):
            encoder.write(x[:, i : i + step])
        encoder.finish(total)


def _close_quietly(container: Any) -> None:
    try:
        container.close()
    except Exception:
        pass
