"""Throughput of ``mediacore clean`` on a 1-hour meeting recording (mp4).

Builds, in a temporary directory, a synthetic meeting recording: H.264 video
(libx264, 640x360, 5 fps screen-share-like test pattern, ultrafast) and AAC
audio (48 kHz mono, 96 kbit/s: the bundled noisy speech example looped).
Then times ``clean_media`` (what ``mediacore clean meeting.mp4 -o out.mp4``
runs: audio decoded, cleaned, re-encoded as AAC; video copied packet for
packet) with

* ``ours``: the default chain (``default_chain(sample_rate, num_channels)``,
  neural denoiser),
* ``ours dsp``: ``default_chain(..., denoise="dsp")``,
* ``ours + loudness -16``: the default chain with ``loudness_lufs=-16``
  (``mediacore clean --loudness -16``: a measuring pass, then the writing
  pass with BS.1770 normalisation and a -1 dBTP true-peak limiter),
* ``I/O only``: an identity pipeline (decode + AAC encode + video copy: the
  floor any audio cleanup pays in this harness; the peer the others are
  measured against).

Reported per system: wall time, x real time (recording seconds per wall
second) and the ratio to the I/O floor; and for the default chain's output
a check that every video packet is byte-identical to the input's and that
the audio duration is within one AAC frame (1024 samples).  One thread
(``NUMBA_NUM_THREADS=1``).

Usage::

    PYTHONPATH=src nice .venv/bin/python benchmarks/meeting_throughput.py [--minutes 60] [--json OUT]
"""

from __future__ import annotations

import os

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402

from mediacore.bench.environment import environment, format_environment  # noqa: E402
from offline_throughput import Identity  # noqa: E402  (same folder: the I/O-floor pipeline)

RATE = 48000
FPS = 5
PACKAGES = ("mediacore", "numpy", "numba", "onnxruntime", "av")




def make_meeting(path: str, minutes: float) -> float:
    """Write the synthetic recording; return its duration in seconds."""
    import av
    import soundfile as sf
    from importlib.resources import files

    from mediacore.io._av import float_to_frame

    speech, sr = sf.read(str(files("mediacore") / "_assets" / "example_noisy.flac"), dtype="float32")
    assert sr == RATE
    seconds = minutes * 60
    n = int(seconds * RATE)
    # a few slides with a moving cursor, like a screen share
    slides = []
    rng = np.random.default_rng(0)
    for k in range(6):
        img = np.full((360, 640, 3), 235, np.uint8)
        for _ in range(12):
            y, x = rng.integers(20, 330), rng.integers(20, 560)
            img[y: y + 8, x: x + rng.integers(40, 200)] = rng.integers(0, 120, 3)
        slides.append(img)
    with av.open(path, "w") as oc:
        oc.metadata["title"] = "weekly meeting"
        vs = oc.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "tune": "zerolatency"})
        vs.width, vs.height, vs.pix_fmt = 640, 360, "yuv420p"
        a = oc.add_stream("aac", rate=RATE)
        a.layout = "mono"
        a.bit_rate = 96000
        a.codec_context.open()
        fs = a.codec_context.frame_size
        n_frames = int(seconds * FPS)
        a_pos = 0
        for i in range(n_frames):
            img = slides[(i // (FPS * 60)) % len(slides)].copy()
            cx, cy = 320 + int(200 * np.sin(i / 40)), 180 + int(100 * np.cos(i / 55))
            img[cy: cy + 12, cx: cx + 12] = 0
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            oc.mux(vs.encode(vf))
            # interleave: audio up to the next video frame's time
            a_end = min(n, int((i + 1) * RATE / FPS))
            while a_pos + fs <= a_end or (i == n_frames - 1 and a_pos < n):
                m = min(fs, n - a_pos)
                idx = (a_pos + np.arange(m)) % len(speech)
                f = float_to_frame(speech[idx][None, :], a.codec_context.format.name, "mono", RATE)
                f.pts, f.time_base = a_pos, Fraction(1, RATE)
                oc.mux(a.encode(f))
                a_pos += m
        oc.mux(vs.encode(None))
        oc.mux(a.encode(None))
    return seconds


def video_digest(path: str) -> tuple[int, str]:
    import av

    h = hashlib.sha256()
    count = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        for p in c.demux(s):
            if p.size:
                h.update(bytes(p))
                h.update(str((p.pts, p.dts, p.is_keyframe)).encode())
                count += 1
    return count, h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--keep", metavar="DIR", help="build the recording in DIR and keep it")
    args = ap.parse_args()
    env = environment(PACKAGES)
    print(format_environment(env))

    from mediacore import default_chain
    from mediacore.io import clean_media, probe, read_audio  # noqa: F401

    work = args.keep or tempfile.mkdtemp(prefix="meeting-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "meeting.mp4")
    try:
        t0 = time.perf_counter()
        if not os.path.exists(src):
            make_meeting(src, args.minutes)
        info = probe(src)
        print(f"\nrecording: {src}: {info.duration_s:.0f} s, {os.path.getsize(src) / 1e6:.0f} MB, "
              f"video {info.video_codecs}, audio {[a.codec for a in info.audio_streams]} "
              f"(built in {time.perf_counter() - t0:.0f} s)")
        # warm numba / onnxruntime outside the timing
        default_chain(sample_rate=RATE, num_channels=1).run(np.zeros(RATE, np.float32))
        default_chain(sample_rate=RATE, num_channels=1, denoise="dsp").run(np.zeros(RATE, np.float32))

        def ours(sr, ch):
            return default_chain(sample_rate=sr, num_channels=ch)

        systems = {
            "I/O only": (Identity, {}),
            "ours (default chain, neural)": (ours, {}),
            "ours dsp": (lambda sr, ch: default_chain(sample_rate=sr, num_channels=ch, denoise="dsp"), {}),
            "ours + loudness -16": (ours, {"loudness_lufs": -16.0}),
        }
        rows = {}
        for name, (make, options) in systems.items():
            out = os.path.join(work, "out.mp4")
            rep = clean_media(src, out, make, **options)
            rows[name] = {"wall_s": rep.wall_time_s, "x_realtime": rep.realtime_factor,
                          "duration_s": rep.duration_s}
            if name.startswith("ours (default"):
                vin, vout = video_digest(src), video_digest(out)
                r = rep.audio_streams[0]
                rows[name]["video_packets"] = vin[0]
                rows[name]["video_identical"] = vin == vout
                rows[name]["audio_samples_in"] = r.input_samples
                rows[name]["audio_samples_out"] = r.output_samples
            if options:
                from mediacore.stages.loudness import measure_loudness

                y, sr = read_audio(out)
                m = measure_loudness(y, sr)
                del y
                rows[name]["output_lufs"] = m.integrated_lufs
                rows[name]["output_true_peak_dbtp"] = m.true_peak_dbtp
            os.unlink(out)
            print(f"  {name:30s} {rep.wall_time_s:7.1f} s  {rep.realtime_factor:6.1f}x real time", flush=True)
        floor = rows["I/O only"]["wall_s"]
        print(f"\n{'system':30s} {'wall s':>8s} {'x real time':>12s} {'/ I/O floor':>12s}")
        for name, r in rows.items():
            r["vs_io_floor"] = r["wall_s"] / floor
            print(f"{name:30s} {r['wall_s']:8.1f} {r['x_realtime']:12.1f} {r['vs_io_floor']:12.2f}")
        if "ours + loudness -16" in rows:
            r = rows["ours + loudness -16"]
            print(f"loudness -16: output {r['output_lufs']:.2f} LUFS, true peak {r['output_true_peak_dbtp']:.2f} dBTP")
        d = rows["ours (default chain, neural)"]
        print(f"\nvideo packets byte-identical: {d['video_identical']} ({d['video_packets']} packets); "
              f"audio {d['audio_samples_in']} samples in, {d['audio_samples_out']} out "
              f"(difference {d['audio_samples_out'] - d['audio_samples_in']}, one AAC frame = 1024)")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"environment": env, "minutes": args.minutes, "systems": rows}, fh, indent=2)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
