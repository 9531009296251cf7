"""``clean_media``: stream a media file's audio through a processing pipeline,
copy every other stream untouched, write the result atomically."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
import numpy as np

from mediacore.errors import FormatError, MediaError, ParameterError
from mediacore.stage import check_range
from mediacore.io._av import (
    DECODER_FAMILY,
    LOSSY_ENCODERS,
    MULTI_AUDIO_EXTENSIONS,
    audio_streams_or_raise,
    check_finite,
    check_input_path,
    clean_metadata,
    encoder_available,
    error_text,
    family_encoders,
    open_input,
    output_format,
    parse_bitrate,
    resolve_codec,
    same_container,
    split_ext,
)
from mediacore.io.atomic import atomic_output
from mediacore.io.integrity import StreamTally, check_packets
from mediacore.io.read import MAX_END_PADDING, AudioStreamDecoder
from mediacore.io.write import AudioStreamEncoder, choose_rate, encoder_problem, output_container

#: seconds of audio handed to ``pipeline.process`` per call
BLOCK_SECONDS = 0.25

#: output muxers that hold chapters (FFmpeg writes and reads them back)
CHAPTER_MUXERS = {"mp4", "mov", "ipod", "matroska", "webm", "ogg", "mp3"}

#: FFmpeg's AVDISCARD_ALL: a stream the demuxer has consumed itself (an MP4 chapter track)
AVDISCARD_ALL = 48

#: stop buffering non-audio packets while waiting for the first audio frames after this many
_PRIME_MAX_PACKETS = 2048


class AudioPipeline(Protocol):
    """What ``make_pipeline(sample_rate, num_channels)`` must return."""

    latency: int
    output_sample_rate: int

    def process(self, x: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...


ProgressCallback = Callable[[float, "float | None"], Any]


@dataclass(frozen=True)
class AudioStreamReport:
    input_index: int
    output_index: int
    input_codec: str
    output_codec: str
    input_sample_rate: int
    sample_rate: int  #: output (encoder) rate
    channels: int
    input_samples: int  #: exact input length (per channel, input rate)
    output_samples: int  #: encoded length (per channel, output rate)
    latency: int  #: pipeline latency removed (samples at the pipeline's output rate)
    start_time_s: float
    bitrate: int | None


@dataclass(frozen=True)
class CleanReport:
    """Summary of one :func:`clean_media` run (values of the first audio stream
    at top level; every processed stream in ``audio_streams``)."""

    input_path: str
    output_path: str
    duration_s: float  #: audio duration of the first processed stream
    sample_rate: int  #: output sample rate
    channels: int
    audio_codec: str  #: output encoder, e.g. "aac", "libopus", "pcm_s16le"
    video_streams_copied: int
    wall_time_s: float
    realtime_factor: float  #: duration_s / wall_time_s
    input_sample_rate: int = 0
    other_streams_copied: int = 0  #: subtitle / data / attachment / cover-art streams
    audio_streams: tuple[AudioStreamReport, ...] = ()
    chapters_copied: int = 0
    #: chapters of the input the output container cannot hold (a RuntimeWarning says so too)
    chapters_dropped: int = 0
    #: input stream index -> integrated loudness (LUFS) of the pipeline output before normalising
    #: (only with ``loudness_lufs``)
    loudness_lufs: dict[int, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# per audio stream
# ---------------------------------------------------------------------------


class _AudioJob:
    """decode -> block -> pipeline -> drop latency -> encode, for one stream."""

    def __init__(self, src: str, container: Any, stream: Any) -> None:
        self.src = src
        self.stream = stream
        self.dec = AudioStreamDecoder(src, container, stream)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self.pipeline: Any = None
        self.enc: AudioStreamEncoder | None = None
        self.latency = 0
        self._to_drop = 0
        self._out_count = 0  # pipeline output samples seen (incl. dropped latency)
        self.block = 0
        self.what = f"{src} audio stream #{stream.index}"

    @property
    def primed(self) -> bool:
        return self.dec.total > 0

    def decode(self, packet: Any | None) -> None:
        for x in self.dec.decode(packet):
            self._pending.append(x)
            self._pending_n += x.shape[1]
        if self.enc is not None:
            self.drain()

    def make(self, make_pipeline: Callable[[int, int], Any]) -> None:
        """Create the pipeline for the decoder's real rate / channel count."""
        rate, ch = self.dec.sample_rate, self.dec.channels
        if not rate or not ch:
            raise MediaError(f"{self.what}: unknown sample rate / channel count ({rate} Hz, {ch} ch)")
        pipeline = make_pipeline(rate, ch)
        for attr in ("process", "flush"):
            if not callable(getattr(pipeline, attr, None)):
                raise ParameterError(
                    f"make_pipeline({rate}, {ch}) returned {type(pipeline).__name__} without a "
                    f"callable .{attr}(); expected an object with process(x), flush(), latency, output_sample_rate"
                )
        latency = getattr(pipeline, "latency", 0)
        p_rate = getattr(pipeline, "output_sample_rate", rate)
        if isinstance(latency, bool) or not isinstance(latency, (int, np.integer)) or latency < 0:
            raise ParameterError(f"pipeline.latency must be an int >= 0 (samples), got {latency!r}")
        if isinstance(p_rate, bool) or not isinstance(p_rate, (int, np.integer)) or p_rate <= 0:
            raise ParameterError(f"pipeline.output_sample_rate must be a positive int (Hz), got {p_rate!r}")
        self.pipeline = pipeline
        self.latency = self._to_drop = int(latency)
        self.p_rate = int(p_rate)
        self.block = max(256, int(round(BLOCK_SECONDS * rate)))

    def open_encoder(self, out: Any, *, codec: str, bitrate: int | None, out_rate: int) -> None:
        """Add the output stream (raises ValueError if the container cannot hold *codec*)."""
        rate = self.dec.sample_rate
        same_family = codec in DECODER_FAMILY.get(self.dec.codec, (self.dec.codec,))
        if bitrate is None and self.dec.bit_rate and same_family and codec in LOSSY_ENCODERS:
            # same lossy codec family: keep the input's bitrate (within sane bounds)
            ch = self.dec.channels
            bitrate = min(max(self.dec.bit_rate, 24_000 * ch), 320_000 * ch)
        # room to cut the tail once the exact input length is known (codec end padding)
        holdback = math.ceil((MAX_END_PADDING + 64) * out_rate / rate) + 1024
        self.enc = AudioStreamEncoder(
            out,
            codec,
            in_rate=self.p_rate,
            channels=self.dec.channels,
            out_rate=out_rate,
            bitrate=bitrate,
            layout=self.dec.layout,
            holdback=holdback,
            bits=self.dec.bits,
            what=self.what,
        )
        self.enc.set_start_time(self.dec.start_time or 0.0)
        meta = clean_metadata(dict(self.stream.metadata))
        if meta:
            self.enc.stream.metadata.update(meta)
        try:
            self.enc.stream.disposition = self.stream.disposition
        except Exception:  # pragma: no cover - cosmetic
            pass

    def drain(self) -> None:
        """Run every complete block of decoded audio through the pipeline."""
        while self._pending_n >= self.block:
            self._run(self._take(self.block))

    def _take(self, n: int) -> np.ndarray:
        parts, got = [], 0
        while got < n and self._pending:
            b = self._pending[0]
            need = n - got
            if b.shape[1] <= need:
                parts.append(self._pending.pop(0))
                got += b.shape[1]
            else:
                parts.append(b[:, :need])
                self._pending[0] = b[:, need:]
                got = n
        self._pending_n -= got
        return np.ascontiguousarray(parts[0]) if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _check_output(self, y: Any, call: str) -> np.ndarray:
        ch = self.dec.channels
        if not isinstance(y, np.ndarray):
            raise FormatError(f"{self.what}: pipeline.{call} returned {type(y).__name__}, expected ndarray ({ch}, m)")
        if y.ndim == 1 and ch == 1:
            y = y[None, :]
        if y.ndim != 2 or y.shape[0] != ch:
            raise FormatError(f"{self.what}: pipeline.{call} returned shape {y.shape}, expected ({ch}, m)")
        if y.dtype != np.float32:
            if y.dtype.kind != "f":
                raise FormatError(f"{self.what}: pipeline.{call} returned dtype {y.dtype}, expected float32")
            y = y.astype(np.float32)
        check_finite(y, self._out_count, f"{self.what}: pipeline.{call} output")
        return y

    def _emit(self, y: np.ndarray) -> None:
        self._out_count += y.shape[1]
        if self._to_drop:
            k = min(self._to_drop, y.shape[1])
            y = y[:, k:]
            self._to_drop -= k
        if y.shape[1]:
            self.enc.write(y)

    def _run(self, x: np.ndarray) -> None:
        self._emit(self._check_output(self.pipeline.process(x), "process"))

    def finish(self) -> AudioStreamReport:
        while self._pending_n:
            self._run(self._take(min(self.block, self._pending_n)))
        self._emit(self._check_output(self.pipeline.flush(), "flush"))
        self.dec.check_not_empty()
        self.dec.check_complete()
        n_in = self.dec.exact_length()
        enc = self.enc
        total = round(n_in * enc.rate / self.dec.sample_rate)
        produced = enc.delivered
        if produced > total:  # pipeline produced more than latency + input; cannot un-encode
            warnings.warn(
                f"{self.what}: pipeline output exceeded the input length by {produced - total} samples "
                f"beyond the cut margin; output is that much longer",
                RuntimeWarning,
                stacklevel=3,
            )
        n_out = enc.finish(total)
        return AudioStreamReport(
            input_index=self.stream.index,
            output_index=enc.stream.index,
            input_codec=self.dec.codec,
            output_codec=enc.codec_name,
            input_sample_rate=self.dec.sample_rate,
            sample_rate=enc.rate,
            channels=self.dec.channels,
            input_samples=n_in,
            output_samples=n_out,
            latency=self.latency,
            start_time_s=float(self.dec.start_time or 0.0),
            bitrate=enc.bit_rate,
        )


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _copyable(stream: Any, can_video: bool) -> str | None:
    """'video' / 'other' if this non-audio stream should be copied, else None.

    Streams FFmpeg marks discard-all are not copied: in MP4/MOV that is the
    text track it has turned into chapters (which are written again as
    chapters; copying the track as well makes the mov muxer fail)."""
    if stream.discard == AVDISCARD_ALL:
        return None
    if stream.type == "video":
        attached = bool(stream.disposition & av.stream.Disposition.attached_pic)
        if can_video:
            return "other" if attached else "video"
        return "other" if attached else None
    if stream.type in ("subtitle", "data", "attachment") and can_video:
        return "other"
    return None


def _progress_reporter(progress: Any, total: float | None, label: str) -> tuple[Callable[[float], None], Callable[[], None]]:
    if progress is False or progress is None:
        return (lambda s: None), (lambda: None)
    if callable(progress):
        last = [-1.0]

        def update(s: float) -> None:
            if s - last[0] >= 0.5 or s == total:
                last[0] = s
                progress(s, total)

        return update, (lambda: None)
    if progress is True:
        from tqdm import tqdm

        # integer milliseconds (no float drift past the total), displayed in seconds
        total_ms = int(round(total * 1000)) if total else None
        bar = tqdm(
            total=total_ms,
            unit="s",
            unit_scale=0.001,
            desc=label,
            file=sys.stderr,
            bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}, {rate_fmt}]"
            if total_ms
            else "{desc}: {n:.1f} s [{elapsed}, {rate_fmt}]",
            dynamic_ncols=True,
        )

        def update_bar(s: float) -> None:
            ms = int(s * 1000)
            if total_ms is not None:
                ms = min(ms, total_ms)
            if ms > bar.n:
                bar.update(ms - bar.n)

        return update_bar, bar.close
    raise ParameterError(f"progress must be a bool or a callable(progress_s, total_s), got {progress!r}")


def _demux(container: Any, streams: list[Any], src: str) -> Iterator[Any]:
    it = container.demux(streams)
    while True:
        try:
            packet = next(it)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            raise MediaError(f"{src}: corrupt or truncated (demux error): {error_text(exc)}") from exc
        yield packet


# ---------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------


def clean_media(
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    make_pipeline: Callable[[int, int], Any],
    *,
    audio_codec: str | None = None,
    bitrate: int | str | None = None,
    out_sample_rate: int | None = None,
    progress: bool | ProgressCallback = False,
    loudness_lufs: float | None = None,
    true_peak_dbtp: float = -1.0,
) -> CleanReport:
    """Process the audio of *in_path* with ``make_pipeline(rate, channels)`` and
    write *out_path*, streaming in ~0.25 s blocks (constant memory).

    * The pipeline's first ``latency`` output samples are dropped and its
      ``flush()`` tail appended, then the result is cut / zero-padded to exactly
      the input's length, so output sample k lines up with input sample k.
    * Output format from the extension.  Audio -> audio keeps the input rate
      unless ``out_sample_rate`` is given (libopus always runs at 48 kHz).  The
      default codec keeps the input's family where the container allows it
      (AAC in mp4/mov, Opus in webm/mkv, PCM depth in wav), else the
      container's usual codec.
    * Video, subtitle, data and attachment streams are copied packet for packet
      (no re-encode) when the output container can hold video; every audio
      stream is processed (one pipeline each) if the container holds several,
      else only the first.  Audio start time, stream/container metadata and
      dispositions are kept.
    * Written to a temporary file next to *out_path* and moved into place with
      ``os.replace``; on any error (or KeyboardInterrupt) nothing is left.
    * ``progress=True`` draws a tqdm bar on stderr; a callable gets
      ``(seconds_done, total_seconds_or_None)``.
    * ``loudness_lufs`` (e.g. -16 or -23) normalises each processed stream's
      integrated loudness (ITU-R BS.1770) to that target after the pipeline,
      with a true-peak limit of ``true_peak_dbtp``.  Integrated loudness
      needs the whole stream, so the audio is decoded and processed twice
      (a measuring pass, then the writing pass); the report has the
      measured values.
    * Chapters are kept where the output container holds them (mp4, mov, m4a,
      mkv, mka, webm, ogg/opus, mp3); otherwise a RuntimeWarning names the
      number dropped (also ``CleanReport.chapters_dropped``).

    Raises MediaError (missing / corrupt / truncated input, no audio stream),
    FormatError (empty audio, NaN/Inf in input or pipeline output),
    ParameterError (bad arguments, codec the container cannot hold, video the
    output container cannot hold).
    """
    t0 = time.perf_counter()
    src = check_input_path(in_path)
    dst = os.fspath(out_path)
    muxer, default_enc, can_video = output_format(dst)
    ext = split_ext(dst)
    user_codec = resolve_codec(audio_codec) if audio_codec is not None else None
    br = parse_bitrate(bitrate)
    if out_sample_rate is not None:
        if isinstance(out_sample_rate, bool) or not isinstance(out_sample_rate, (int, np.integer)):
            raise ParameterError(f"out_sample_rate must be an int in Hz or None, got {out_sample_rate!r}")
        if not 1000 <= int(out_sample_rate) <= 768_000:
            raise ParameterError(f"out_sample_rate must be 1000..768000 Hz, got {out_sample_rate}")
    if not callable(make_pipeline):
        raise ParameterError(f"make_pipeline must be callable(sample_rate, num_channels), got {make_pipeline!r}")
    if not (progress is True or progress is False or progress is None or callable(progress)):
        raise ParameterError(f"progress must be a bool or a callable(progress_s, total_s), got {progress!r}")
    if loudness_lufs is not None:
        check_range("clean_media", "loudness_lufs", loudness_lufs, -70.0, 0.0)
        check_range("clean_media", "true_peak_dbtp", true_peak_dbtp, -60.0, 0.0)

    job = _CleanJob(src, dst, make_pipeline, muxer=muxer, default_enc=default_enc, can_video=can_video,
                    ext=ext, user_codec=user_codec, bitrate=br, out_sample_rate=out_sample_rate)
    if loudness_lufs is not None:
        from mediacore.io.loudness import measure_processed_loudness

        job.loudness = (float(loudness_lufs), float(true_peak_dbtp),
                        measure_processed_loudness(src, make_pipeline, all_streams=ext in MULTI_AUDIO_EXTENSIONS))
    try:
        with atomic_output(dst) as tmp:
            with open_input(src, complete=True) as ic:
                job.prime(ic, progress)
                with output_container(tmp, muxer, movie_timescale=job.out_rate0, what=dst,
                                      file_desc="the output file") as oc:
                    try:
                        job.build(ic, oc)
                        job.run(oc)
                    except av.FFmpegError as exc:  # the muxer refused a packet (its own or one it interleaved)
                        raise MediaError(
                            f"{dst}: writing the {muxer} output failed: {error_text(exc)} (the streams copied "
                            f"from {os.path.basename(src)} may not fit the {muxer} container; choose another one)"
                        ) from exc
            # the input is closed before the temporary file replaces the output
    finally:
        job.close_progress()

    wall = time.perf_counter() - t0
    r0 = job.reports[0]
    duration = r0.input_samples / r0.input_sample_rate
    return CleanReport(
        input_path=src,
        output_path=dst,
        duration_s=duration,
        sample_rate=r0.sample_rate,
        channels=r0.channels,
        audio_codec=r0.output_codec,
        video_streams_copied=job.n_video,
        wall_time_s=wall,
        realtime_factor=duration / wall if wall > 0 else math.inf,
        input_sample_rate=r0.input_sample_rate,
        other_streams_copied=job.n_other,
        audio_streams=job.reports,
        chapters_copied=job.n_chapters,
        chapters_dropped=job.n_chapters_dropped,
        loudness_lufs=job.loudness[2] if job.loudness else {},
    )


class _CleanJob:
    """State of one clean_media run: prime (decode first audio), build the
    output streams, then stream everything through."""

    def __init__(self, src: str, dst: str, make_pipeline: Callable[[int, int], Any], *, muxer: str,
                 default_enc: str, can_video: bool, ext: str, user_codec: str | None, bitrate: int | None,
                 out_sample_rate: int | None) -> None:
        self.src, self.dst, self.make_pipeline = src, dst, make_pipeline
        self.muxer, self.default_enc, self.can_video, self.ext = muxer, default_enc, can_video, ext
        self.user_codec, self.bitrate = user_codec, bitrate
        self.out_sample_rate = int(out_sample_rate) if out_sample_rate is not None else None
        self.n_video = self.n_other = self.n_chapters = self.n_chapters_dropped = 0
        #: (target LUFS, true-peak ceiling dBTP, {stream index: measured LUFS}) or None
        self.loudness: tuple[float, float, dict[int, float]] | None = None
        self.reports: tuple[AudioStreamReport, ...] = ()
        self._update: Callable[[float], None] = lambda s: None
        self._close_bar: Callable[[], None] = lambda: None
        self._out_stream_of: dict[int, Any] = {}
        #: what the demuxer delivered of each copied stream (checked against the headers at the end)
        self._tallies: dict[int, StreamTally] = {}

    def close_progress(self) -> None:
        self._close_bar()

    # -- phase 1 --------------------------------------------------------------------
    def prime(self, ic: Any, progress: Any) -> None:
        """Pick streams and decode until every processed audio stream has produced
        samples, so pipelines and encoders see the decoder's real rate / layout.
        Packets of copied streams wait in ``held`` (bounded) until the output
        header exists."""
        src = self.src
        self.container_format = ic.format.name
        self.in_streams = {s.index: s for s in ic.streams}
        in_audio = audio_streams_or_raise(ic, src)
        proc = in_audio if self.ext in MULTI_AUDIO_EXTENSIONS else in_audio[:1]
        self.copies = {
            s.index: kind for s in ic.streams if s.type != "audio" and (kind := _copyable(s, self.can_video))
        }
        self.jobs = [_AudioJob(src, ic, s) for s in proc]
        self.job_of = {j.stream.index: j for j in self.jobs}
        total_s = ic.duration / 1_000_000 if ic.duration else None
        if not total_s:
            durs = [s.duration * s.time_base for s in proc if s.duration and s.time_base]
            total_s = float(max(durs)) if durs else None
        self.total_s = total_s

        self.packets = _demux(ic, [*proc, *(s for s in ic.streams if s.index in self.copies)], src)
        self.held: list[Any] = []
        self.exhausted = False
        while not all(j.primed for j in self.jobs) and len(self.held) < _PRIME_MAX_PACKETS:
            packet = next(self.packets, None)
            if packet is None:
                self.exhausted = True
                break
            job = self.job_of.get(packet.stream_index)
            if job is not None:
                job.decode(packet)
            elif packet.size:
                self.held.append(packet)
        if self.exhausted:
            for j in self.jobs:
                j.decode(None)
                j.dec.check_not_empty()
        self.out_rate0 = int(self.out_sample_rate or self.jobs[0].dec.sample_rate)
        self._update, self._close_bar = _progress_reporter(progress, total_s, os.path.basename(src))

    # -- phase 2 --------------------------------------------------------------------
    def build(self, ic: Any, oc: Any) -> None:
        """Add output streams in the input's order; copy metadata."""
        oc.metadata.update(clean_metadata(dict(ic.metadata)))
        chapters = ic.chapters()
        if chapters and self.muxer in CHAPTER_MUXERS:
            oc.set_chapters(chapters)
            self.n_chapters = len(chapters)
        elif chapters:
            self.n_chapters_dropped = len(chapters)
            warnings.warn(f"{self.dst}: {len(chapters)} chapter(s) of {self.src} dropped: a {self.muxer} file cannot "
                          f"hold chapters (mp4, mov, m4a, mkv, mka, webm, ogg, opus and mp3 can)",
                          RuntimeWarning, stacklevel=4)
        for s in ic.streams:
            if s.index in self.job_of:
                self._add_audio(self.job_of[s.index], oc)
            elif s.index in self.copies:
                self._add_copy(s, self.copies[s.index], oc)

    def _add_audio(self, j: _AudioJob, oc: Any) -> None:
        """Open the output encoder of one processed stream.

        Without ``audio_codec`` the input's codec family (and, for PCM, FLAC and
        ALAC, its sample depth) is kept where the output container holds it, else
        the container's usual codec is used.  When the output has the input's
        container (same extension), the family and the sample rate must be kept:
        if this FFmpeg build cannot, that is a ParameterError naming a way out,
        never a silent change."""
        dec = j.dec
        j.make(self._maker(j))
        out_rate = int(self.out_sample_rate or dec.sample_rate)
        family: list[str] = []
        if self.user_codec:
            candidates = [self.user_codec]
        else:
            family = family_encoders(dec.codec, dec.bits, self.ext)
            candidates = [c for c in dict.fromkeys([*family, self.default_enc]) if encoder_available(c)]
        keep = self.user_codec is None and same_container(self.src, self.dst)
        errors: list[str] = []
        for codec in candidates:
            if keep and codec not in family:
                break
            if not self.user_codec:
                problem = encoder_problem(codec, rate=out_rate, channels=dec.channels, layout=dec.layout,
                                          bits=dec.bits)
                rate = choose_rate(av.Codec(codec, "w"), out_rate)
                if problem is None and keep and self.out_sample_rate is None and rate != dec.sample_rate:
                    problem = f"{codec} runs at {rate} Hz, the input at {dec.sample_rate} Hz"
                if problem:
                    errors.append(problem)
                    continue
            try:
                j.open_encoder(oc, codec=codec, bitrate=self.bitrate, out_rate=out_rate)
                return
            except av.FFmpegError as exc:
                raise ParameterError(
                    f"{self.dst}: encoder {codec} rejects {dec.channels} ch at {out_rate} Hz: {error_text(exc)}"
                ) from exc
            except ValueError as exc:  # the container cannot hold this codec
                if isinstance(exc, (ParameterError, FormatError)):
                    raise
                errors.append(f"{codec}: {exc}")
        if keep:
            why = "; ".join(errors) or f"this FFmpeg build has no encoder for it that {self.ext} holds"
            raise ParameterError(
                f"{self.dst}: cannot keep the input's {dec.codec} audio ({dec.channels} ch, {dec.sample_rate} Hz) "
                f"in {self.ext}: {why}; choose the output codec (--codec / audio_codec, e.g. "
                f"{self.default_enc}) to convert it")
        raise ParameterError(f"{self.dst}: no usable audio encoder for {self.muxer}: tried {candidates}: {errors}")

    def _maker(self, j: _AudioJob) -> Callable[[int, int], Any]:
        """make_pipeline, followed by loudness normalisation when asked for."""
        if self.loudness is None:
            return self.make_pipeline
        target, ceiling, measured = self.loudness
        from mediacore.io.loudness import FollowedBy
        from mediacore.stages.loudness import LoudnessNormalize

        def make(rate: int, ch: int) -> Any:
            p = self.make_pipeline(rate, ch)
            out_rate = int(getattr(p, "output_sample_rate", rate))
            norm = LoudnessNormalize(sample_rate=out_rate, num_channels=ch, target_lufs=target,
                                     true_peak_dbtp=ceiling, measured_lufs=measured[j.stream.index])
            return FollowedBy(p, norm)

        return make

    def _add_copy(self, s: Any, kind: str, oc: Any) -> None:
        try:
            o = oc.add_stream_from_template(s, opaque=True)
        except (ValueError, av.FFmpegError) as exc:
            if kind == "video":
                raise ParameterError(
                    f"{self.dst}: cannot copy {s.codec_context.name} video (stream #{s.index}) into "
                    f"{self.muxer}; video is never re-encoded: choose a container that holds it ({exc})"
                ) from exc
            warnings.warn(
                f"{self.dst}: dropping {s.type} stream #{s.index}: {self.muxer} cannot hold it ({exc})",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        meta = clean_metadata(dict(s.metadata))
        if meta:
            o.metadata.update(meta)
        try:
            o.disposition = s.disposition
        except Exception:  # pragma: no cover - cosmetic
            pass
        self._out_stream_of[s.index] = o
        self._tallies[s.index] = StreamTally(s.index, s.type)
        if kind == "video":
            self.n_video += 1
        else:
            self.n_other += 1

    # -- phase 3 --------------------------------------------------------------------
    def _copy_packet(self, oc: Any, packet: Any) -> None:
        o = self._out_stream_of.get(packet.stream_index)
        if o is None or not packet.size:
            return
        self._tallies[packet.stream_index].add(packet)
        packet.stream = o
        try:
            oc.mux(packet)
        except av.FFmpegError as exc:
            raise MediaError(f"{self.dst}: muxing stream #{o.index} failed at pts {packet.pts}: {exc}") from exc

    def run(self, oc: Any) -> None:
        jobs = self.jobs
        for j in jobs:  # audio decoded while priming
            j.drain()
        for packet in self.held:
            self._copy_packet(oc, packet)
        self.held.clear()
        update = self._update
        for packet in self.packets:
            job = self.job_of.get(packet.stream_index)
            if job is not None:
                job.decode(packet)
                update(max(jj.dec.total / jj.dec.sample_rate for jj in jobs))
            else:
                self._copy_packet(oc, packet)
        for j in jobs:
            j.decode(None)
        self.reports = tuple(j.finish() for j in jobs)
        for index, tally in self._tallies.items():  # copied streams: complete as the headers declare?
            check_packets(self.src, self.container_format, self.in_streams[index], tally)
        r0 = self.reports[0]
        update(self.total_s or r0.input_samples / r0.input_sample_rate)
