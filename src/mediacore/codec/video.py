"""Video stages: real-time encoders (VP8, VP9, H.264, AV1), scaling /
pixel-format conversion, a simulcast ladder and a decoder.

Frames are ``av.VideoFrame`` objects or RGB uint8 arrays (height, width, 3).
An encoder numbers the frames it is given at its ``fps`` (the real-time
capture clock); the frames' own pts are left as they are.
Packets are :class:`EncodedPacket` in time base 1/90000 (the RTP video
clock; 1/fps for the rare rates that do not divide 90000).  Encoders are configured for real time: no look-ahead / B-frames
(one frame in, its packet out), a fixed keyframe interval, constant
bitrate targets.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

import numpy as np

from mediacore.codec import _pyav
from mediacore.codec.packet import EncodedPacket
from mediacore.errors import FormatError, ParameterError
from mediacore.stage import check_choice

VIDEO_TIME_BASE = Fraction(1, 90000)

#: codec -> (FFmpeg encoder, default speed, allowed speed range); speed is the
#: codec's own knob: libvpx cpu-used, x264 preset index, SVT-AV1 preset
VIDEO_CODECS = {
    "vp8": ("libvpx", 10, (0, 16)),
    "vp9": ("libvpx-vp9", 8, (0, 9)),
    "h264": ("libx264", 1, (0, 9)),
    "av1": ("libsvtav1", 10, (0, 13)),
}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
INTERPOLATIONS = ("FAST_BILINEAR", "BILINEAR", "BICUBIC", "AREA", "LANCZOS")


def _check_int(owner: str, what: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ParameterError(f"{owner}: expected {what} as an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _check_even_size(owner: str, width: Any, height: Any) -> tuple[int, int]:
    w = _check_int(owner, "width", width, 16, 8192)
    h = _check_int(owner, "height", height, 16, 8192)
    if w % 2 or h % 2:
        raise ParameterError(f"{owner}: expected even width and height for 4:2:0 video, got {w}x{h}")
    return w, h


class VideoEncoder:
    """Real-time video encoder.

    Parameters
    ----------
    codec : {"vp8", "vp9", "h264", "av1"}
    width, height : int
        Frames of other sizes are rejected (put a :class:`VideoScale` first).
    fps : int, default 30
    bitrate_bps : int, default 1_000_000
    keyframe_interval_frames : int, default 3 * fps
    speed : int, optional
        The codec's speed knob: libvpx ``cpu-used`` (VP8 0-16, VP9 0-9),
        x264 preset index (0 ultrafast .. 9 placebo), SVT-AV1 preset (0-13).
        Defaults are real-time settings (VP8 10, VP9 8, H.264 1 superfast, AV1 10).
    threads : int, default 1
        0 means one per core (``os.cpu_count()``).
    global_header : bool, default False
        Put the codec configuration in ``extradata`` (needed for MP4/MKV
        files); off, H.264 repeats SPS/PPS in-band (what RTP senders want).
    """

    def __init__(self, *, codec: str, width: int, height: int, fps: int = 30, bitrate_bps: int = 1_000_000,
                 keyframe_interval_frames: int | None = None, speed: int | None = None, threads: int = 1,
                 global_header: bool = False) -> None:
        self.codec = check_choice("VideoEncoder", "codec", codec, tuple(VIDEO_CODECS))
        self.encoder_name, default_speed, (lo, hi) = VIDEO_CODECS[codec]
        self.width, self.height = _check_even_size("VideoEncoder", width, height)
        self.fps = _check_int("VideoEncoder", "fps", fps, 1, 240)
        self.bitrate_bps = _check_int("VideoEncoder", "bitrate_bps", bitrate_bps, 10_000, 100_000_000)
        self.keyframe_interval_frames = _check_int(
            "VideoEncoder", "keyframe_interval_frames",
            3 * self.fps if keyframe_interval_frames is None else keyframe_interval_frames, 1, 100_000)
        self.speed = _check_int("VideoEncoder", "speed", default_speed if speed is None else speed, lo, hi)
        self.threads = _check_int("VideoEncoder", "threads", threads, 0, 64)
        self.global_header = bool(global_header)
        self.reset()

    @property
    def name(self) -> str:
        return "VideoEncoder"

    @property
    def extradata(self) -> bytes | None:
        return self._cc.extradata

    def _options(self) -> dict[str, Any]:
        kf = self.keyframe_interval_frames
        if self.codec in ("vp8", "vp9"):
            opts = {"deadline": "realtime", "cpu-used": self.speed, "lag-in-frames": 0, "error-resilient": 1,
                    "auto-alt-ref": 0}
            if self.codec == "vp9":
                opts["row-mt"] = 1
            return opts
        if self.codec == "h264":
            return {"preset": X264_PRESETS[self.speed], "tune": "zerolatency", "forced-idr": 1,
                    "x264-params": f"keyint={kf}:min-keyint={kf}:scenecut=0:bframes=0"}
        # SVT-AV1: real-time mode, low-delay prediction (which needs CBR), no scene-change keyframes
        lp = self.threads or os.cpu_count() or 1
        params = f"rtc=1:pred-struct=1:rc=2:keyint={kf}:scd=0:lp={lp}"
        return {"preset": self.speed, "svtav1-params": params}

    def reset(self) -> None:
        import av

        setup: dict[str, Any] = dict(width=self.width, height=self.height, pix_fmt="yuv420p",
                                     time_base=Fraction(1, self.fps), framerate=Fraction(self.fps),
                                     bit_rate=self.bitrate_bps, gop_size=self.keyframe_interval_frames,
                                     max_b_frames=0, thread_count=self.threads or os.cpu_count() or 1)
        if self.threads != 1:
            # slice threads: frame threads would add a frame of delay per thread
            setup["thread_type"] = "SLICE"
        if self.global_header:
            setup["flags"] = av.codec.context.Flags.global_header
        if self.codec == "av1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner per encoder otherwise
        self._cc = _pyav.open_encoder("VideoEncoder", self.encoder_name, options=self._options(), setup=setup)
        self._n = 0

    def process(self, frame: Any) -> list[EncodedPacket]:
        """One frame in; the packets that are ready out (real-time settings: its own)."""
        f = _pyav.video_frame(frame, None, Fraction(1, self.fps))
        if (f.width, f.height) != (self.width, self.height):
            raise FormatError(f"VideoEncoder: expected frames of {self.width}x{self.height}, got {f.width}x{f.height} "
                              f"(insert VideoScale)")
        if f.format.name != "yuv420p":
            f = f.reformat(format="yuv420p")
        saved = (f.pts, f.time_base)
        f.pts, f.time_base = self._n, Fraction(1, self.fps)
        self._n += 1
        try:
            return self._convert(self._cc.encode(f))
        finally:
            if f is frame:  # the caller's frame keeps its timing
                f.pts = saved[0]
                if saved[1] is not None:
                    f.time_base = saved[1]

    def flush(self) -> list[EncodedPacket]:
        out = self._convert(self._cc.encode(None))
        self.reset()
        return out

    def _convert(self, raw: list[Any]) -> list[EncodedPacket]:
        out = []
        scale = VIDEO_TIME_BASE.denominator // self.fps if 90000 % self.fps == 0 else None
        for p in _pyav.to_packets(raw, self.encoder_name, Fraction(1, self.fps)):
            if scale is not None:  # frame count -> 90 kHz clock
                p = EncodedPacket(p.data, None if p.pts is None else p.pts * scale,
                                  None if p.dts is None else p.dts * scale, p.duration * scale, VIDEO_TIME_BASE,
                                  p.is_keyframe, p.codec, p.meta)
            out.append(p)
        return out

    def __repr__(self) -> str:
        return (f"VideoEncoder(codec={self.codec!r}, width={self.width}, height={self.height}, fps={self.fps}, "
                f"bitrate_bps={self.bitrate_bps}, keyframe_interval_frames={self.keyframe_interval_frames}, "
                f"speed={self.speed}, threads={self.threads})")


class VideoScale:
    """Scale and convert the pixel format of frames (libswscale).

    Parameters: ``width``, ``height``, ``pixel_format`` (default "yuv420p"),
    ``interpolation`` (default "BILINEAR"; "AREA" is best for big downscales).
    """

    def __init__(self, *, width: int, height: int, pixel_format: str = "yuv420p",
                 interpolation: str = "BILINEAR") -> None:
        import av

        self.width, self.height = _check_even_size("VideoScale", width, height)
        try:
            av.VideoFormat(pixel_format)
        except Exception:
            raise ParameterError(f"VideoScale: expected an FFmpeg pixel format such as 'yuv420p', "
                                 f"got {pixel_format!r}") from None
        self.pixel_format = pixel_format
        self.interpolation = check_choice("VideoScale", "interpolation", interpolation.upper(), INTERPOLATIONS)

    def process(self, frame: Any) -> Any:
        f = _pyav.video_frame(frame, None, Fraction(1, 30))
        return _pyav.reformat(f, self.width, self.height, self.pixel_format, self.interpolation)

    def reset(self) -> None:
        """Stateless."""

    def __repr__(self) -> str:
        return (f"VideoScale(width={self.width}, height={self.height}, pixel_format={self.pixel_format!r}, "
                f"interpolation={self.interpolation!r})")


#: the usual three-layer ladder of SFUs (LiveKit, mediasoup): name, height, share of the top bitrate
DEFAULT_LAYERS = (("f", 720, 1.0), ("h", 360, 0.25), ("q", 180, 0.08))


class SimulcastLadder:
    """Encode one input at several resolutions (simulcast), keyframes aligned.

    Parameters
    ----------
    codec : str
    width, height : int
        Size of the top layer; lower layers keep the aspect ratio.
    layers : sequence of (name, height, bitrate_bps)
        Default ``f``/``h``/``q`` at ``height``, 1/2 and 1/4 of it with 100 %,
        25 % and 8 % of ``bitrate_bps``.
    fps, bitrate_bps, keyframe_interval_frames, speed, threads : as VideoEncoder

    ``process(frame)`` returns ``{layer name: [EncodedPacket, ...]}``; each
    packet's ``meta["layer"]`` names its layer.
    """

    def __init__(self, *, codec: str, width: int = 1280, height: int = 720, fps: int = 30,
                 bitrate_bps: int = 1_500_000, layers: Any = None, keyframe_interval_frames: int | None = None,
                 speed: int | None = None, threads: int = 1) -> None:
        if layers is None:
            layers = [(name, height // (1 << i), int(bitrate_bps * share))
                      for i, (name, _h, share) in enumerate(DEFAULT_LAYERS)]
        layers = list(layers)
        if not layers or len({n for n, _h, _b in layers}) != len(layers):
            raise ParameterError(f"SimulcastLadder: expected layers with distinct names, got {layers!r}")
        self.layers = []
        for name, h, br in layers:
            h = _check_int("SimulcastLadder", f"height of layer {name!r}", h, 16, height)
            w = int(round(width * h / height / 2)) * 2
            h -= h % 2
            self.layers.append((name, w, h, br))
        self._scalers = {n: VideoScale(width=w, height=h, interpolation="AREA") for n, w, h, _b in self.layers}
        self._encoders = {n: VideoEncoder(codec=codec, width=w, height=h, fps=fps, bitrate_bps=br,
                                          keyframe_interval_frames=keyframe_interval_frames, speed=speed,
                                          threads=threads) for n, w, h, br in self.layers}

    def process(self, frame: Any) -> dict[str, list[EncodedPacket]]:
        out = {}
        for name, _w, _h, _b in self.layers:
            pk = self._encoders[name].process(self._scalers[name].process(frame))
            out[name] = [EncodedPacket(p.data, p.pts, p.dts, p.duration, p.time_base, p.is_keyframe, p.codec,
                                       {**p.meta, "layer": name}) for p in pk]
        return out

    def flush(self) -> dict[str, list[EncodedPacket]]:
        out = {}
        for name, *_ in self.layers:
            out[name] = [EncodedPacket(p.data, p.pts, p.dts, p.duration, p.time_base, p.is_keyframe, p.codec,
                                       {**p.meta, "layer": name}) for p in self._encoders[name].flush()]
        return out

    def reset(self) -> None:
        for e in self._encoders.values():
            e.reset()

    def __repr__(self) -> str:
        enc = next(iter(self._encoders.values()))
        layers = ", ".join(f"{n}={w}x{h}@{b}" for n, w, h, b in self.layers)
        return f"SimulcastLadder(codec={enc.codec!r}, fps={enc.fps}, layers=[{layers}])"


class VideoDecoder:
    """Decode packets of one video stream to ``av.VideoFrame`` s (h264, vp8, vp9, av1)."""

    DECODERS = {"vp8": "vp8", "vp9": "vp9", "h264": "h264", "av1": "libdav1d"}

    def __init__(self, *, codec: str, extradata: bytes | None = None) -> None:
        self.codec = check_choice("VideoDecoder", "codec", codec, tuple(self.DECODERS))
        self.extradata = extradata
        self.reset()

    def reset(self) -> None:
        self._cc = _pyav.open_decoder("VideoDecoder", self.DECODERS[self.codec], setup=dict(extradata=self.extradata))

    def process(self, packets: EncodedPacket | list[EncodedPacket]) -> list[Any]:
        if isinstance(packets, EncodedPacket):
            packets = [packets]
        out = []
        for p in packets:
            try:
                out += self._cc.decode(_pyav.to_av_packet(p))
            except Exception as exc:
                raise FormatError(f"VideoDecoder: {self.codec} packet at pts {p.pts} does not decode: {exc}") from exc
        return out

    def flush(self) -> list[Any]:
        out = list(self._cc.decode(None))
        self.reset()
        return out

    def __repr__(self) -> str:
        return f"VideoDecoder(codec={self.codec!r})"
