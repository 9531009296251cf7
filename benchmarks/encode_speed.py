"""Encode speed of the codec stages (``mediacore.codec``).

Video: frames per second of ``VideoEncoder`` for VP8, VP9, H.264 and AV1 at
360p and 720p with the real-time defaults, one thread and all cores, on a
synthetic talking-head-like sequence (a textured background with a moving
blob and a little noise, so every frame changes like a webcam picture).
The conversion RGB -> YUV 4:2:0 is done before timing: only the encoder is
measured.  Each configuration gets a warm-up of 10 frames, then
``--frames`` frames are timed; the best of ``--rounds`` rounds is reported
(the machine is shared; the best round is the least disturbed one).

Audio: real-time factor (audio seconds per wall second) of ``OpusEncoder``
at 48 kHz (20 ms frames, 32 kbit/s, complexity 10 and 5, VoIP), with AAC and
FLAC beside it as peers measured in the same run, on the bundled speech
example looped to 60 s.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/encode_speed.py [--frames 60] [--rounds 2] [--json OUT]
"""

from __future__ import annotations

import os

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ.setdefault("SVT_LOG", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mediacore.bench.environment import environment, format_environment  # noqa: E402

RESOLUTIONS = {"360p": (640, 360, 600_000), "720p": (1280, 720, 1_500_000)}
CODECS = ("vp8", "vp9", "h264", "av1")
PACKAGES = ("mediacore", "numpy", "av")


def frames_yuv(width: int, height: int, n: int) -> list:
    import av

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    background = (96 + 40 * np.sin(x / 23.0) * np.cos(y / 17.0)).astype(np.float32)
    out = []
    for i in range(n):
        cx, cy = width / 2 + width / 6 * np.sin(i / 9), height / 2 + height / 10 * np.cos(i / 7)
        blob = 120 * np.exp(-(((x - cx) / (width / 8)) ** 2 + ((y - cy) / (height / 5)) ** 2))
        img = background + blob + rng.normal(0, 3, (height, width))
        rgb = np.clip(np.stack([img, img * 0.9 + 10, img * 0.8 + 20], -1), 0, 255).astype(np.uint8)
        out.append(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p"))
    return out


def time_video(codec: str, width: int, height: int, bitrate: int, threads: int, frames: list, warmup: int,
               rounds: int) -> dict:
    from mediacore.codec import VideoEncoder

    best = float("inf")
    size = 0
    for _ in range(rounds):
        enc = VideoEncoder(codec=codec, width=width, height=height, fps=30, bitrate_bps=bitrate, threads=threads)
        for f in frames[:warmup]:
            enc.process(f)
        t0 = time.perf_counter()
        size = 0
        for f in frames[warmup:]:
            size += sum(p.size for p in enc.process(f))
        best = min(best, time.perf_counter() - t0)
        enc.flush()
    n = len(frames) - warmup
    return {"fps": n / best, "ms_per_frame": 1000 * best / n, "kbps_at_30fps": size * 8 / 1000 / (n / 30)}


def time_audio(make, x: np.ndarray, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        enc = make()
        enc.process(x[:, :48000])
        enc.flush()
        t0 = time.perf_counter()
        for i in range(0, x.shape[1], 960):
            enc.process(x[:, i: i + 960])
        enc.flush()
        best = min(best, time.perf_counter() - t0)
    return x.shape[1] / 48000 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=60, help="timed frames per configuration (default 60)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--codecs", default=",".join(CODECS))
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    env = environment(PACKAGES)
    import av

    env["ffmpeg"] = {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}
    print(format_environment(env))
    print(f"video threads: 1 and all cores (threads=0 -> codec decides, {cores} core(s) here)\n")

    warmup = 10
    results: dict = {"environment": env, "video": [], "audio": []}
    print(f"{'codec':6s} {'res':5s} {'threads':>7s} {'fps':>8s} {'ms/frame':>9s} {'kbit/s@30':>10s}")
    for res, (w, h, br) in RESOLUTIONS.items():
        frames = frames_yuv(w, h, warmup + args.frames)
        for codec in args.codecs.split(","):
            for threads, label in ((1, "1"), (0, "all")):
                r = time_video(codec, w, h, br, threads, frames, warmup, args.rounds)
                r.update(codec=codec, resolution=res, threads=label)
                results["video"].append(r)
                print(f"{codec:6s} {res:5s} {label:>7s} {r['fps']:8.1f} {r['ms_per_frame']:9.2f} "
                      f"{r['kbps_at_30fps']:10.0f}", flush=True)

    from importlib.resources import files

    import soundfile as sf

    from mediacore.codec import AacEncoder, FlacEncoder, OpusEncoder

    speech, sr = sf.read(str(files("mediacore") / "_assets" / "example_noisy.flac"), dtype="float32")
    assert sr == 48000
    x = np.tile(speech, int(np.ceil(60 * sr / len(speech))))[None, : 60 * sr].copy()
    print(f"\naudio: {x.shape[1] / sr:.0f} s of speech at 48 kHz mono, fed in 20 ms chunks")
    print(f"{'encoder':44s} {'x real time':>12s} {'us per 20 ms':>13s}")
    for label, make in (
        ("OpusEncoder complexity=10, 20 ms, 32 kbit/s", lambda: OpusEncoder(complexity=10, bitrate_bps=32000)),
        ("OpusEncoder complexity=5, 20 ms, 32 kbit/s", lambda: OpusEncoder(complexity=5, bitrate_bps=32000)),
        ("OpusEncoder complexity=10, 10 ms, 32 kbit/s", lambda: OpusEncoder(frame_ms=10, bitrate_bps=32000)),
        ("AacEncoder 64 kbit/s (peer)", lambda: AacEncoder(bitrate_bps=64000)),
        ("FlacEncoder level 5 (peer)", lambda: FlacEncoder()),
    ):
        rtf = time_audio(make, x, args.rounds)
        results["audio"].append({"encoder": label, "x_realtime": rtf, "rtf": 1 / rtf})
        print(f"{label:44s} {rtf:12.0f} {20000 / rtf:13.1f}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
