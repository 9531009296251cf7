"""PyAV glue for the codec stages: codec contexts, packet conversion, muxing.
The stage classes in :mod:`mediacore.codec.audio` / :mod:`~mediacore.codec.video`
keep the parameters, validation and buffering; everything that touches
``av`` objects is here."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import av
import numpy as np

from mediacore.codec.packet import EncodedPacket
from mediacore.errors import MediaError, ParameterError


def has_encoder(name: str) -> bool:
    try:
        av.Codec(name, "w")
        return True
    except Exception:
        return False


def open_encoder(owner: str, name: str, *, options: dict[str, str], setup: dict[str, Any]) -> Any:
    """An opened encoder context; FFmpeg's refusal becomes a ParameterError naming the stage."""
    if not has_encoder(name):
        raise ParameterError(f"{owner}: expected FFmpeg encoder {name!r} in this PyAV build, it is missing")
    cc = av.CodecContext.create(name, "w")
    for k, v in setup.items():
        setattr(cc, k, v)
    cc.options = {k: str(v) for k, v in options.items()}
    try:
        cc.open()
    except av.FFmpegError as exc:
        raise ParameterError(f"{owner}: {name} rejects the settings {setup | options}: {exc}") from exc
    unused = dict(cc.options)  # FFmpeg hands back the options the encoder does not know
    if unused:
        raise ParameterError(f"{owner}: expected {name} to take the option(s) {unused}, but this FFmpeg build's "
                             f"{name} does not know them")
    return cc


#: AV_CODEC_CAP_SMALL_LAST_FRAME: the encoder takes a short final frame
_CAP_SMALL_LAST_FRAME = 1 << 6


def accepts_small_last_frame(cc: Any) -> bool:
    return bool(cc.codec.capabilities & _CAP_SMALL_LAST_FRAME)


def open_decoder(owner: str, name: str, *, setup: dict[str, Any]) -> Any:
    try:
        cc = av.CodecContext.create(name, "r")
    except Exception as exc:
        raise ParameterError(f"{owner}: expected a codec FFmpeg can decode, got {name!r}") from exc
    for k, v in setup.items():
        if v is not None:
            setattr(cc, k, v)
    return cc


def to_packets(raw: list[Any], codec: str, time_base: Fraction,
               meta: dict[str, Any] | None = None) -> list[EncodedPacket]:
    out = []
    for p in raw:
        tb = p.time_base or time_base
        out.append(EncodedPacket(bytes(p), p.pts, p.dts, int(p.duration or 0), Fraction(tb), bool(p.is_keyframe),
                                 codec, dict(meta or {})))
    return out


def to_av_packet(p: EncodedPacket) -> Any:
    pk = av.Packet(p.data)
    pk.pts, pk.dts, pk.time_base = p.pts, p.dts, p.time_base
    pk.duration = p.duration
    pk.is_keyframe = p.is_keyframe
    return pk


def audio_frame(x: np.ndarray, fmt: str, layout: str, rate: int, pts: int) -> Any:
    """float32 (channels, n) -> av.AudioFrame in the encoder's sample format."""
    from mediacore.io._av import float_to_frame

    f = float_to_frame(x, fmt, layout, rate)
    f.pts, f.time_base = pts, Fraction(1, rate)
    return f


def frames_to_float(frames: list[Any]) -> list[np.ndarray]:
    from mediacore.io._av import frame_to_float

    return [frame_to_float(f) for f in frames if f.samples]


def video_frame(image: Any, pts: int | None, time_base: Fraction) -> Any:
    """av.VideoFrame, or an RGB uint8 array (height, width, 3) -> av.VideoFrame with pts."""
    if isinstance(image, av.VideoFrame):
        f = image
    else:
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    if pts is not None:
        f.pts, f.time_base = pts, time_base
    return f


def reformat(frame: Any, width: int, height: int, pixel_format: str, interpolation: str) -> Any:
    out = frame.reformat(width=width, height=height, format=pixel_format, interpolation=interpolation)
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out


def mux_packets(path: str | os.PathLike[str], tracks: list[tuple[Any, list[EncodedPacket]]]) -> None:
    """Write already-encoded packets to a container (format from the extension),
    atomically.  ``tracks`` is a list of (encoder stage, packets); the
    encoder gives the stream parameters (codec, rate / size, extradata).
    H.264 in MP4/MKV needs ``VideoEncoder(global_header=True)``."""
    from mediacore.io._av import output_format
    from mediacore.io.atomic import atomic_output
    from mediacore.io.write import output_container

    p = os.fspath(path)
    muxer = output_format(p)[0]
    with atomic_output(p) as tmp, output_container(tmp, muxer, what=p) as oc:
        streams = []
        for enc, _packets in tracks:
            if hasattr(enc, "width"):  # a VideoEncoder
                s = oc.add_stream(enc.encoder_name, rate=enc.fps)
                s.codec_context.width, s.codec_context.height = enc.width, enc.height
                s.codec_context.pix_fmt = "yuv420p"
                s.codec_context.bit_rate = enc.bitrate_bps
            else:
                s = oc.add_stream(enc.codec_name, rate=enc.sample_rate)
                s.codec_context.layout = "mono" if enc.num_channels == 1 else "stereo"
                if enc.bitrate_bps:
                    s.codec_context.bit_rate = enc.bitrate_bps
            if enc.extradata:
                s.codec_context.extradata = enc.extradata
            streams.append(s)
        pending = []
        for s, (_enc, packets) in zip(streams, tracks):
            for p_ in packets:
                pending.append((float(p_.dts * p_.time_base) if p_.dts is not None else 0.0, s, p_))
        pending.sort(key=lambda t: t[0])  # interleave by decode time
        for _t, s, p_ in pending:
            pk = to_av_packet(p_)
            pk.stream = s
            try:
                oc.mux(pk)
            except av.FFmpegError as exc:
                raise MediaError(f"{p}: muxing {p_.codec} packet at pts {p_.pts} failed: {exc}") from exc
