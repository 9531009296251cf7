"""Shared PyAV helpers: opening files, error translation, sample conversion,
extension and codec tables.  Private to :mod:`mediacore.io`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import av
import numpy as np

from mediacore.errors import FormatError, MediaError, ParameterError
from mediacore.io.integrity import check_structure, file_kind, structure_damage, truncated_error

# ---------------------------------------------------------------------------
# Extension tables
# ---------------------------------------------------------------------------

#: extension -> (FFmpeg muxer name, default audio encoder)
AUDIO_EXTENSIONS: dict[str, tuple[str, str]] = {
    ".wav": ("wav", "pcm_s16le"),
    ".flac": ("flac", "flac"),
    ".opus": ("ogg", "libopus"),
    ".ogg": ("ogg", "libopus"),
    ".oga": ("ogg", "libopus"),
    ".m4a": ("ipod", "aac"),
    ".mp3": ("mp3", "libmp3lame"),
    ".mka": ("matroska", "libopus"),
    ".aac": ("adts", "aac"),
    ".aiff": ("aiff", "pcm_s16be"),
    ".aif": ("aiff", "pcm_s16be"),
}

#: extension -> (FFmpeg muxer name, fallback audio encoder); these can hold video.
VIDEO_EXTENSIONS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "aac"),
    ".m4v": ("mp4", "aac"),
    ".mov": ("mov", "aac"),
    ".mkv": ("matroska", "libopus"),
    ".webm": ("webm", "libopus"),
    ".ts": ("mpegts", "aac"),
    ".avi": ("avi", "libmp3lame"),
}

#: the one list of media extensions: what ``clean`` reads and writes back and ``batch`` picks up
MEDIA_EXTENSIONS: tuple[str, ...] = tuple(sorted({*AUDIO_EXTENSIONS, *VIDEO_EXTENSIONS}))

#: containers that can carry several audio streams
MULTI_AUDIO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mka", ".m4a", ".ts"}

#: extension aliases that name the same container (for "same container in and out")
_SAME_CONTAINER = {".aif": ".aiff", ".oga": ".ogg", ".m4v": ".mp4"}

#: audio encoders each output extension holds (None: whatever the muxer accepts; tried in turn)
_HOLDS: dict[str, frozenset[str] | None] = {
    ".flac": frozenset({"flac"}),
    ".ogg": frozenset({"libopus", "libvorbis", "flac"}),
    ".opus": frozenset({"libopus"}),
    ".m4a": frozenset({"aac", "alac"}),
    ".mp3": frozenset({"libmp3lame"}),
    ".aac": frozenset({"aac"}),
    ".webm": frozenset({"libopus", "libvorbis"}),
    # PCM-in-MP4 plays almost nowhere
    ".mp4": frozenset({"aac", "alac", "libmp3lame", "ac3", "eac3", "flac", "libopus"}),
    ".ts": frozenset({"aac", "libmp3lame", "mp2", "ac3", "eac3"}),
    ".mka": None,
    ".mkv": None,
    ".mov": None,
}

#: PCM sample kind -> (little-endian encoder, big-endian encoder)
_PCM_BY_KIND = {
    8: ("pcm_u8", "pcm_s8"),
    16: ("pcm_s16le", "pcm_s16be"),
    24: ("pcm_s24le", "pcm_s24be"),
    32: ("pcm_s32le", "pcm_s32be"),
    "flt": ("pcm_f32le", "pcm_f32be"),
    "dbl": ("pcm_f64le", "pcm_f64be"),
}
_PCM_CONTAINERS = {".wav": 0, ".avi": 0, ".aiff": 1}  # extension -> index into _PCM_BY_KIND values

#: user-facing aliases -> FFmpeg encoder names
CODEC_ALIASES: dict[str, str] = {
    "opus": "libopus",
    "mp3": "libmp3lame",
    "lame": "libmp3lame",
    "vorbis": "libvorbis",
    "pcm16": "pcm_s16le",
    "pcm_16": "pcm_s16le",
    "s16": "pcm_s16le",
    "int16": "pcm_s16le",
    "pcm24": "pcm_s24le",
    "pcm_24": "pcm_s24le",
    "s24": "pcm_s24le",
    "pcm32": "pcm_s32le",
    "pcm_32": "pcm_s32le",
    "float": "pcm_f32le",
    "float32": "pcm_f32le",
    "pcm_float": "pcm_f32le",
    "f32": "pcm_f32le",
    "double": "pcm_f64le",
    "pcm_double": "pcm_f64le",
    "f64": "pcm_f64le",
}

#: decoder name -> encoders of the same codec family, best first (else: an encoder of the decoder's name)
DECODER_FAMILY: dict[str, tuple[str, ...]] = {
    "aac": ("aac",),
    "aac_fixed": ("aac",),
    "opus": ("libopus",),
    "libopus": ("libopus",),
    # not FFmpeg's own (experimental) Vorbis encoder: it can abort the process (floor_encode assertion)
    "vorbis": ("libvorbis",),
    "libvorbis": ("libvorbis",),
    "mp3": ("libmp3lame",),
    "mp3float": ("libmp3lame",),
    "mp2float": ("mp2",),
    "ac3_fixed": ("ac3",),
}

LOSSLESS_DECODERS = {"flac", "alac", "wavpack", "tta", "ape", "mlp", "truehd"}

#: per-channel default bitrates (bit/s) of lossy encoders
DEFAULT_BITRATE_PER_CHANNEL = {
    "aac": 80_000,
    "libopus": 48_000,
    "libmp3lame": 96_000,
    "libvorbis": 80_000,
    "mp2": 96_000,
    "ac3": 96_000,
    "eac3": 96_000,
}

LOSSY_ENCODERS = set(DEFAULT_BITRATE_PER_CHANNEL)

_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "surround", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

#: stream / container metadata keys that describe the old encoding and must not be copied
STALE_METADATA = {
    "encoder",
    "major_brand",
    "minor_version",
    "compatible_brands",
    "duration",
    "number_of_frames",
    "number_of_bytes",
    "bps",
    "_statistics_writing_app",
    "_statistics_writing_date_utc",
    "_statistics_tags",
}


def split_ext(path: str | os.PathLike[str]) -> str:
    return os.path.splitext(os.fspath(path))[1].lower()


def output_format(path: str | os.PathLike[str]) -> tuple[str, str, bool]:
    """(muxer, default encoder, can_hold_video) for an output path, by extension."""
    ext = split_ext(path)
    if ext in AUDIO_EXTENSIONS:
        mux, enc = AUDIO_EXTENSIONS[ext]
        return mux, enc, False
    if ext in VIDEO_EXTENSIONS:
        mux, enc = VIDEO_EXTENSIONS[ext]
        return mux, enc, True
    known = ", ".join(sorted({*AUDIO_EXTENSIONS, *VIDEO_EXTENSIONS}))
    raise ParameterError(
        f"{os.fspath(path)}: cannot choose an output format for extension {ext or '(none)'!r}; "
        f"expected one of {known}"
    )


def same_container(a: str, b: str) -> bool:
    """Do two paths have extensions naming the same container (``.aif``/``.aiff``, ...)?"""
    ea, eb = split_ext(a), split_ext(b)
    return _SAME_CONTAINER.get(ea, ea) == _SAME_CONTAINER.get(eb, eb)


def container_holds(ext: str, encoder: str) -> bool:
    """Can an output with extension *ext* hold audio from *encoder* (by our table)?"""
    ext = _SAME_CONTAINER.get(ext, ext)
    if ext in _PCM_CONTAINERS:
        pcm = encoder.startswith(("pcm_", "adpcm_"))
        if ext == ".aiff":
            return pcm and not encoder.endswith("le") and not encoder.startswith("adpcm_")
        return (pcm and not encoder.endswith("be")) or (ext == ".avi" and encoder in ("libmp3lame", "mp2", "ac3"))
    holds = _HOLDS.get(ext, frozenset())
    return holds is None or encoder in holds


def family_encoders(decoder: str, bits: int | str | None, ext: str) -> list[str]:
    """Encoders (available in this build, held by *ext*) that keep the input's codec
    family, best first.  PCM and lossless input into a PCM container keeps its
    sample kind (8/16/24/32-bit integer, float, double) in the container's byte order."""
    ext = _SAME_CONTAINER.get(ext, ext)
    if ext in _PCM_CONTAINERS and (decoder.startswith("pcm_") or decoder in LOSSLESS_DECODERS):
        kind = bits if bits in _PCM_BY_KIND else (24 if isinstance(bits, int) and 16 < bits < 24 else None)
        if kind is not None and not decoder.startswith(("pcm_alaw", "pcm_mulaw")):
            return [_PCM_BY_KIND[kind][_PCM_CONTAINERS[ext]]]
    if ext == ".flac" and (decoder.startswith("pcm_s") or decoder in LOSSLESS_DECODERS):
        return ["flac"]  # lossless to lossless; flac keeps integer depths up to 32 bits
    names = DECODER_FAMILY.get(decoder, (decoder,))
    return [n for n in names if encoder_available(n) and container_holds(ext, n)]


def resolve_codec(name: str) -> str:
    """Map a user codec name/alias to an available FFmpeg encoder name."""
    if not isinstance(name, str) or not name:
        raise ParameterError(f"audio codec must be a non-empty string, got {name!r}")
    enc = CODEC_ALIASES.get(name.lower(), name)
    try:
        codec = av.Codec(enc, "w")
    except Exception as exc:  # av raises UnknownCodecError / ValueError
        raise ParameterError(f"audio codec {name!r}: no FFmpeg encoder {enc!r} in this PyAV build") from exc
    if codec.type != "audio":
        raise ParameterError(f"audio codec {name!r}: {enc!r} is a {codec.type} encoder, expected audio")
    if codec.experimental:
        raise ParameterError(f"audio codec {name!r}: expected a stable encoder, got FFmpeg's experimental {enc!r} "
                             f"(it can corrupt output or abort); this build has no stable one for it")
    return codec.name


def encoder_available(name: str) -> bool:
    """A stable (not experimental) audio encoder of that name is in this build."""
    try:
        codec = av.Codec(name, "w")
    except Exception:
        return False
    return codec.type == "audio" and not codec.experimental


def parse_bitrate(bitrate: int | str | None) -> int | None:
    """Accept 128000, '128k', '1.5M' or None."""
    if bitrate is None:
        return None
    if isinstance(bitrate, bool):
        raise ParameterError(f"bitrate must be an int (bit/s) or a string like '128k', got {bitrate!r}")
    if isinstance(bitrate, (int, np.integer)):
        value = int(bitrate)
    elif isinstance(bitrate, str):
        s = bitrate.strip().lower().removesuffix("bps").removesuffix("b")
        mult = 1
        if s.endswith("k"):
            mult, s = 1000, s[:-1]
        elif s.endswith("m"):
            mult, s = 1_000_000, s[:-1]
        try:
            value = int(round(float(s) * mult))
        except ValueError:
            raise ParameterError(f"bitrate {bitrate!r}: expected an int (bit/s) or a string like '128k'") from None
    else:
        raise ParameterError(f"bitrate must be an int (bit/s) or a string like '128k', got {type(bitrate).__name__}")
    if not 1000 <= value <= 10_000_000:
        raise ParameterError(f"bitrate {bitrate!r}: expected 1 kbit/s .. 10 Mbit/s, got {value} bit/s")
    return value


def layout_name(channels: int, preferred: str | None = None) -> str:
    if preferred:
        try:
            if av.AudioLayout(preferred).nb_channels == channels:
                return preferred
        except Exception:
            pass
    return _DEFAULT_LAYOUTS.get(channels, f"{channels} channels")


def clean_metadata(meta: dict[str, str]) -> dict[str, str]:
    out = {}
    for k, v in meta.items():
        kl = k.lower()
        if kl in STALE_METADATA or kl.startswith("duration") or kl.startswith("_statistics"):
            continue
        out[k] = v
    return out


# ---------------------------------------------------------------------------
# Opening inputs / error translation
# ---------------------------------------------------------------------------


def check_input_path(path: str | os.PathLike[str]) -> str:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise MediaError(f"{p}: no such file (expected an existing media file)")
    if os.path.isdir(p):
        raise MediaError(f"{p}: is a directory, expected a media file")
    if os.path.getsize(p) == 0:
        raise MediaError(f"{p}: file is empty (0 bytes), expected a media file")
    return p


def error_text(exc: BaseException) -> str:
    """An exception's message without errno noise (FFmpeg errors: their strerror)."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    return str(exc)


@contextmanager
def open_input(path: str | os.PathLike[str], *, complete: bool = False) -> Iterator[Any]:
    """av.open for reading with every failure mapped to MediaError.

    ``complete=True`` also refuses a file whose byte structure shows it is cut
    or has gaps (:func:`~mediacore.io.integrity.check_structure`), before any
    decoding."""
    p = check_input_path(path)
    try:
        container = av.open(p, "r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        damage = structure_damage(p)
        if damage:
            raise truncated_error(p, f"a complete {file_kind(p)} file",
                                  f"one FFmpeg cannot open ({error_text(exc)})", damage) from exc
        found = (f"text that is not valid UTF-8 in its headers ({exc})" if isinstance(exc, UnicodeDecodeError)
                 else f"data FFmpeg cannot read ({error_text(exc)})")
        raise MediaError(f"{p}: cannot open as a media file: expected a media file in a format FFmpeg reads, "
                         f"found {found} (corrupt, truncated or unsupported format)") from exc
    try:
        if complete:
            check_structure(p, container)
        yield container
    finally:
        container.close()


def audio_streams_or_raise(container: Any, path: str) -> list[Any]:
    streams = list(container.streams.audio)
    if not streams:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        raise MediaError(f"{path}: no audio stream (expected at least one; streams found: {kinds})")
    for s in streams:
        if s.codec_context is None:  # FFmpeg found the stream but has no decoder for it
            raise MediaError(
                f"{path}: audio stream #{s.index} has an unsupported codec: expected one this FFmpeg build "
                f"decodes (aac, opus, vorbis, mp3, flac, alac, pcm, ...), got an unknown one")
    return streams


# ---------------------------------------------------------------------------
# Sample conversion
# ---------------------------------------------------------------------------

_INT_SCALE = {"s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


def frame_to_float(frame: Any) -> np.ndarray:
    """Decoded AudioFrame -> float32 array (channels, n), C-contiguous.

    Integer formats are scaled by 1/2**(bits-1) (FFmpeg's convention), so an
    int16 sample k becomes exactly k/32768."""
    fmt = frame.format
    name = fmt.name.rstrip("p") if fmt.is_planar else fmt.name
    channels = frame.layout.nb_channels
    arr = frame.to_ndarray()
    if not fmt.is_planar:
        arr = arr.reshape(-1, channels).T
    if name in ("flt",):
        out = arr
    elif name == "dbl":
        out = arr.astype(np.float32)
    elif name in _INT_SCALE:
        out = arr.astype(np.float32) * np.float32(1.0 / _INT_SCALE[name])
    elif name == "u8":
        out = (arr.astype(np.float32) - 128.0) * np.float32(1.0 / 128.0)
    else:  # pragma: no cover - every FFmpeg sample format is listed above
        raise FormatError(f"unsupported decoded sample format {fmt.name!r}")
    return np.ascontiguousarray(out, dtype=np.float32)


def float_to_frame(x: np.ndarray, fmt_name: str, layout: str, rate: int) -> Any:
    """float32 (channels, n) -> AudioFrame in the encoder's sample format.

    Float -> int uses round(x * 2**(bits-1)) with clipping (inverse of
    :func:`frame_to_float`); 24-bit PCM (carried in s32) is rounded to 24 bits."""
    planar = fmt_name.endswith("p")
    base = fmt_name[:-1] if planar else fmt_name
    if base == "flt":
        data = x.astype(np.float32, copy=False)
    elif base == "dbl":
        data = x.astype(np.float64)
    elif base == "s16":
        data = np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)
    elif base == "s32":
        data = np.clip(np.rint(x.astype(np.float64) * 2147483648.0), -2147483648, 2147483647).astype(np.int32)
    elif base == "s24":  # pseudo-format: 24-bit values in the top bits of s32
        v = np.clip(np.rint(x.astype(np.float64) * 8388608.0), -8388608, 8388607).astype(np.int32)
        data = v << 8
        fmt_name = "s32p" if planar else "s32"
    elif base == "u8":
        data = np.clip(np.rint(x * 128.0 + 128.0), 0, 255).astype(np.uint8)
    else:
        raise FormatError(f"unsupported encoder sample format {fmt_name!r}")
    if not planar:
        data = data.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt_name, layout=layout)
    frame.sample_rate = rate
    return frame


def check_finite(block: np.ndarray, offset: int, what: str) -> None:
    """Raise FormatError naming the first non-finite sample (index along time)."""
    if np.isfinite(block).all():
        return
    bad = ~np.isfinite(block)
    cols = np.flatnonzero(bad.any(axis=0))
    i = int(cols[0])
    ch = int(np.flatnonzero(bad[:, i])[0])
    val = block[ch, i]
    kind = "NaN" if np.isnan(val) else ("+Inf" if val > 0 else "-Inf")
    raise FormatError(
        f"{what}: sample {offset + i} (channel {ch}) is {kind}; expected finite audio "
        f"(first of {int(bad.sum())} non-finite values in this block)"
    )


def seconds(ts: int | None, time_base: Fraction | None) -> float | None:
    if ts is None or time_base is None:
        return None
    return float(ts * time_base)
