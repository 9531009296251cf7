"""Generated media files of every format mediacore reads and writes back
(PyAV + numpy only): short tones, with 64x48 video where the container holds it."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from mediacore.io._av import float_to_frame

#: extension -> (audio encoder, video encoder or None, container options): one per MEDIA_EXTENSIONS entry
#: (MP4/MOV/M4A with the index in front, so that a cut file still opens: the case that used to pass)
GENERATED = {
    ".wav": ("pcm_s16le", None, None),
    ".flac": ("flac", None, None),
    ".aiff": ("pcm_s16be", None, None),
    ".aif": ("pcm_s16be", None, None),
    ".mp3": ("libmp3lame", None, None),
    ".opus": ("libopus", None, None),
    ".ogg": ("libopus", None, None),
    ".oga": ("libopus", None, None),
    ".aac": ("aac", None, None),
    ".m4a": ("aac", None, {"movflags": "+faststart"}),
    ".mka": ("libopus", None, None),
    ".mp4": ("aac", "libx264", {"movflags": "+faststart"}),
    ".m4v": ("aac", "libx264", {"movflags": "+faststart"}),
    ".mov": ("aac", "libx264", {"movflags": "+faststart"}),
    ".mkv": ("libopus", "libx264", None),
    ".webm": ("libopus", "libvpx", None),
    ".ts": ("aac", "libx264", None),
    ".avi": ("libmp3lame", "libx264", None),
}


def tones(n: int, rate: int, channels: int, seed: int = 3) -> np.ndarray:
    """Two tones per channel (different per channel) + a little noise, peak ~0.5, float32 (channels, n)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    return np.asarray([0.3 * np.sin(2 * np.pi * (440 + 110 * c) * t) + 0.1 * np.sin(2 * np.pi * 1234 * t + c)
                       + 0.02 * rng.standard_normal(n) for c in range(channels)], dtype=np.float32)


def make_file(path, acodec: str, vcodec: str | None = None, *, seconds: float = 1.0, channels: int = 2,
              rate: int = 48000, options: dict | None = None, chapters: list | None = None,
              seed: int = 3) -> np.ndarray:
    """Write *path* (format from its extension); audio and video interleaved in time
    order.  Returns the audio written, float32 (channels, n)."""
    n = int(round(seconds * rate))
    x = tones(n, rate, channels, seed)
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", options=options or {}) as oc:
        vs = None
        if vcodec:
            vs = oc.add_stream(vcodec, rate=25)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = oc.add_stream(acodec, rate=rate)
        a.layout = layout
        if chapters:
            oc.set_chapters(chapters)
        cc = a.codec_context
        cc.open()
        fs = cc.frame_size or 1024
        nv, vi = (int(seconds * 25) if vcodec else 0), 0

        def video_until(t: float) -> None:
            nonlocal vi
            while vi < nv and vi / 25 <= t:
                img = np.full((48, 64, 3), (vi * 9) % 255, np.uint8)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts, vf.time_base = vi, Fraction(1, 25)
                oc.mux(vs.encode(vf))
                vi += 1

        for i in range(0, n, fs):
            video_until(i / rate)
            f = float_to_frame(x[:, i:i + fs], cc.format.name, layout, rate)
            f.pts, f.time_base = i, Fraction(1, rate)
            oc.mux(a.encode(f))
        oc.mux(a.encode(None))
        if vs:
            video_until(seconds)
            oc.mux(vs.encode(None))
    return x


def make_every_format(directory, *, seconds: float = 1.0, stem: str = "clip") -> dict[str, object]:
    """One file per entry of :data:`GENERATED` in *directory*: {extension: path}."""
    files = {}
    for ext, (acodec, vcodec, options) in GENERATED.items():
        files[ext] = directory / f"{stem}{ext}"
        make_file(files[ext], acodec, vcodec, seconds=seconds, options=options)
    return files
