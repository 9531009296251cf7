"""Offline throughput of ``mediacore.io.clean_media`` on a long file, one thread.

Writes a 30-minute 48 kHz mono 16-bit WAV (the bundled ``example_noisy.flac``
looped) into a temporary directory and cleans it to WAV with

* ``ours``: ``default_chain(sample_rate=sr, num_channels=ch)`` (the table
  names the stages it builds),
* ``ours --no-agc``: the same with ``agc=False``,
* ``peer``: the WebRTC APM (pywebrtc_audio ``AudioProcessor``, HPF + NS level
  2 + AGC2) behind the same pipeline interface, 480-sample frames,
* ``peer --no-agc``: the APM with HPF + NS only,
* ``I/O only``: an identity pipeline, so the decode + encode floor is known.

All go through the same ``clean_media`` call (decode, 0.25 s blocks, encode,
atomic write).  Reported: wall time, x-realtime (audio seconds per wall
second; target >= 100x for ``ours``), the ratio to the peer, and the wall
time above the I/O floor.  The temporary files are deleted at the end.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/offline_throughput.py [--minutes 30] [--json OUT]
"""

from __future__ import annotations

import os

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mediacore.bench.environment import environment, format_environment  # noqa: E402

RATE = 48000
FRAME = 480
TARGET_X = 100.0


PACKAGES = ("mediacore", "numpy", "numba", "scipy", "rocket-fft", "av", "soundfile", "pywebrtc-audio",
            "webrtcvad-wheels")


class Identity:
    """Pipeline interface that returns its input (I/O floor)."""

    latency = 0

    def __init__(self, rate: int, ch: int) -> None:
        self.output_sample_rate = rate
        self.ch = ch

    def process(self, x):
        return x

    def flush(self):
        return np.zeros((self.ch, 0), np.float32)


class ApmPipeline:
    """The WebRTC APM behind clean_media's pipeline interface (480-sample frames, mono)."""

    latency = 0

    def __init__(self, rate: int, ch: int, agc: bool) -> None:
        import pywebrtc_audio

        if rate != RATE or ch != 1:
            raise SystemExit(f"peer wrapper handles 48 kHz mono only, got {rate} Hz x {ch}")
        self.output_sample_rate = rate
        self.apm = pywebrtc_audio.AudioProcessor(sample_rate=rate, num_channels=1, high_pass_filter=True,
                                                 noise_suppression=True, auto_gain_control=agc, ns_level=2)
        self.rest = np.zeros(0, np.float32)

    def process(self, x):
        x = np.asarray(x, np.float32).reshape(-1)
        if self.rest.size:
            x = np.concatenate([self.rest, x])
        n = (x.size // FRAME) * FRAME
        self.rest = x[n:].copy()
        out = np.empty(n, np.float32)
        proc = self.apm.process
        for i in range(0, n, FRAME):
            out[i:i + FRAME] = proc(x[i:i + FRAME])
        return out[None, :]

    def flush(self):
        if not self.rest.size:
            return np.zeros((1, 0), np.float32)
        buf = np.zeros(FRAME, np.float32)
        buf[: self.rest.size] = self.rest
        self.rest = np.zeros(0, np.float32)
        return self.apm.process(buf)[None, :]


def make_input(path: str, minutes: float) -> float:
    import soundfile as sf

    from mediacore.bench.example import example_audio

    x = example_audio("noisy")  # 48 kHz
    total = int(round(minutes * 60 * RATE))
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as f:
        done = 0
        while done < total:
            k = min(x.size, total - done)
            f.write(x[:k])
            done += k
    return total / RATE


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--only", nargs="*", help="run only these systems (ours, ours-no-agc, peer, peer-no-agc, io)")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)

    import numba

    import mediacore
    from mediacore.io import clean_media

    env = environment(PACKAGES)
    env["threads"]["numba"] = numba.get_num_threads()
    print(format_environment(env))

    def label(**kw) -> str:
        return " -> ".join(st.name for st in mediacore.default_chain(sample_rate=RATE, **kw).stages)

    systems = {
        "io": ("I/O only (identity pipeline)", lambda sr, ch: Identity(sr, ch)),
        "ours": (f"ours: default_chain ({label()})",
                 lambda sr, ch: mediacore.default_chain(sample_rate=sr, num_channels=ch)),
        "peer": ("peer: webrtc APM HPF + NS2 + AGC2", lambda sr, ch: ApmPipeline(sr, ch, agc=True)),
        "ours-no-agc": (f"ours --no-agc: default_chain(agc=False) ({label(agc=False)})",
                        lambda sr, ch: mediacore.default_chain(sample_rate=sr, num_channels=ch, agc=False)),
        "peer-no-agc": ("peer --no-agc: webrtc APM HPF + NS2", lambda sr, ch: ApmPipeline(sr, ch, agc=False)),
    }
    names = [n for n in systems if not args.only or n in args.only]

    tmp = tempfile.mkdtemp(prefix="mc_offline_")
    results = {}
    try:
        src = os.path.join(tmp, "in.wav")
        t0 = time.perf_counter()
        dur = make_input(src, args.minutes)
        print(f"input: {dur / 60:.1f} min 48 kHz mono PCM_16 WAV ({os.path.getsize(src) / 1e6:.0f} MB), "
              f"written in {time.perf_counter() - t0:.1f} s\n")
        # warm-up on a short file: numba compile / cache load and codec set-up excluded
        short = os.path.join(tmp, "short.wav")
        make_input(short, 0.05)
        for n in names:
            clean_media(short, os.path.join(tmp, "short_out.wav"), systems[n][1])
        for n in names:
            out = os.path.join(tmp, f"out_{n}.wav")
            t0 = time.perf_counter()
            rep = clean_media(src, out, systems[n][1])
            wall = time.perf_counter() - t0
            results[n] = {"what": systems[n][0], "wall_s": wall, "report_wall_s": rep.wall_time_s,
                          "duration_s": rep.duration_s, "x_realtime": rep.duration_s / wall}
            os.remove(out)
            print(f"  {n}: {wall:.1f} s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    io_wall = results.get("io", {}).get("wall_s")
    print("\n### clean_media, 1 thread, WAV -> WAV\n")
    print("| system | wall s | x-realtime | wall / peer | wall above I/O floor s | x-realtime of processing alone |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in names:
        r = results[n]
        peer = results.get("peer-no-agc" if "no-agc" in n else "peer")
        r["vs_peer"] = r["wall_s"] / peer["wall_s"] if peer and n != "io" else None
        if io_wall is not None and n != "io":
            r["above_io_s"] = r["wall_s"] - io_wall
            r["x_realtime_processing"] = r["duration_s"] / r["above_io_s"] if r["above_io_s"] > 0 else None
        else:
            r["above_io_s"] = r["x_realtime_processing"] = None
        fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        print(f"| {r['what']} | {r['wall_s']:.1f} | {r['x_realtime']:.0f}x | {fmt(r['vs_peer'], '.2f')} | "
              f"{fmt(r['above_io_s'], '.1f')} | {fmt(r['x_realtime_processing'], '.0f')} |")
    if "ours" in results:
        x = results["ours"]["x_realtime"]
        print(f"\nours {x:.0f}x realtime, target >= {TARGET_X:.0f}x: {'PASS' if x >= TARGET_X else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "minutes": args.minutes, "results": results,
                       "target_x_realtime": TARGET_X}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
