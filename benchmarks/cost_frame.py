"""Per-frame CPU cost of the default chain against the WebRTC APM, one thread.

Every system processes the same 48 kHz mono signal (the bundled
``example_noisy.flac`` looped to 20 s) in 10 ms (480-sample) frames, one call
per frame, and each call is timed with ``time.perf_counter_ns``.  The systems
take turns in blocks of ``--block`` frames (round robin, the order rotating
each block) so machine noise falls on all of them alike; the whole signal is
run ``--rounds`` times, each system's state reset before each round.  numba
compilation is excluded by a warm-up pass.

Rows: ``ours`` (``default_chain(sample_rate=48000, denoise="dsp", agc=True)``,
whatever stages it builds; the table names them) against ``peer``
(pywebrtc_audio ``AudioProcessor``: HPF + NS level 2 + AGC2), then each stage
of the chain alone (configured as in the chain), the IIR ``HighPass`` and the
energy VAD, and the peers' parts alone, for context.

Then a batch measurement: 64 streams as one (64, 480) block through one
pipeline against 64 pipelines of one stream each (and 64 APMs).

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/cost_frame.py [--json OUT] [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import os

# one thread everywhere, before numpy / numba are imported
for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mediacore.bench.environment import environment, format_environment  # noqa: E402

FRAME = 480
RATE = 48000
FRAME_NS = 10_000_000  # 10 ms


# --------------------------------------------------------------------- environment
PACKAGES = ("mediacore", "numpy", "numba", "scipy", "rocket-fft", "pywebrtc-audio", "webrtcvad-wheels",
            "pyrnnoise", "soxr", "av")


def env_info() -> dict:
    """:func:`mediacore.bench.environment.environment` plus numba's, the affinity's and BLAS thread counts."""
    import numba

    info = environment(PACKAGES)
    info["threads"].update({
        "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_get_num_threads": numba.get_num_threads(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    })
    try:
        from threadpoolctl import threadpool_info
        info["threads"]["blas_pools"] = [f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()]
    except Exception:  # pragma: no cover - optional
        pass
    return info


# -------------------------------------------------------------------------- signal
def load_signal(seconds: float) -> np.ndarray:
    from mediacore.bench.example import example_audio

    x = example_audio("noisy")  # 48 kHz
    n_frames = int(round(seconds * RATE / FRAME))
    return np.ascontiguousarray(np.resize(x, n_frames * FRAME).reshape(n_frames, FRAME))


# ------------------------------------------------------------------------- systems
class System:
    """A named per-frame callable with a factory, so each round starts fresh."""

    def __init__(self, name: str, kind: str, what: str, make):
        self.name, self.kind, self.what, self._make = name, kind, what, make
        self.fn = None
        self.close = None
        self.ns: list[np.ndarray] = []

    def fresh(self) -> None:
        if self.close is not None:
            self.close()
        self.fn, self.close = self._make()


def _ours(build):
    def make():
        st = build()
        return st.process, None
    return make


def _apm(**kw):
    def make():
        import pywebrtc_audio
        apm = pywebrtc_audio.AudioProcessor(sample_rate=RATE, num_channels=1, **kw)
        return apm.process, None
    return make


def _ns():
    import pywebrtc_audio
    ns = pywebrtc_audio.NoiseSuppressor(sample_rate=RATE, level=2)
    return ns.process, None


def _gain_controller():
    import pywebrtc_audio
    gc = pywebrtc_audio.GainController(sample_rate=RATE)
    return gc.process, None


def _rnnoise():
    from mediacore.bench.peers import _rnnoise_lib

    lib = _rnnoise_lib()
    state = lib.rnnoise_create(None)
    buf = np.empty(FRAME, np.float32)  # int16-scale copy of the frame, processed in place
    ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    scale = np.float32(32768.0)
    proc = lib.rnnoise_process_frame

    def fn(frame):
        np.multiply(frame, scale, out=buf)
        proc(state, ptr, ptr)
        return buf

    return fn, (lambda: lib.rnnoise_destroy(state))


def chain48():
    import mediacore

    return mediacore.default_chain(sample_rate=RATE, denoise="dsp", agc=True)


def chain_label() -> str:
    return "default_chain(48k, dsp, agc): " + " -> ".join(repr(st).split("(")[0] for st in chain48().stages)


def _chain_stage(i: int):
    """Stage ``i`` of a freshly built default chain, configured exactly as in the chain."""
    def build():
        return chain48().stages[i]
    return build


def chain_stage_builders() -> list[tuple[str, str, object]]:
    """(row name, description, builder) for each stage of the default chain."""
    out = []
    for i, st in enumerate(chain48().stages):
        desc = repr(st).replace("sample_rate=48000, ", "")
        out.append((f"ours {st.name}", desc + " (as in the chain)", _chain_stage(i)))
    return out


def build_systems(quick_context: bool = True) -> list[System]:
    from mediacore import VAD, HighPass

    s = [
        System("ours", "chain", chain_label(), _ours(chain48)),
        System("peer", "chain", "webrtc APM: HPF + NS(level 2) + AGC2",
               _apm(high_pass_filter=True, noise_suppression=True, auto_gain_control=True, ns_level=2)),
    ]
    if quick_context:
        s += [System(name, "chain stage", desc, _ours(build)) for name, desc, build in chain_stage_builders()]
        s += [
            System("ours HighPass (IIR)", "stage", "HighPass(80 Hz, order 4): the chain's high-pass when "
                   "denoise='none'", _ours(lambda: HighPass(sample_rate=RATE))),
            System("ours VAD energy", "stage", "VAD(backend='energy')",
                   _ours(lambda: VAD(sample_rate=RATE, backend="energy"))),
            System("peer HPF", "peer part", "webrtc APM high_pass_filter only", _apm(high_pass_filter=True)),
            System("peer NS", "peer part", "webrtc NoiseSuppressor(level=2)", _ns),
            System("peer AGC2", "peer part", "webrtc GainController (AGC2, own RNN VAD)", _gain_controller),
            System("rnnoise", "peer part", "librnnoise (pyrnnoise) process_frame", _rnnoise),
        ]
    return s


# -------------------------------------------------------------------------- timing
def timer_overhead_ns(n: int = 20000) -> float:
    pc = time.perf_counter_ns
    d = np.empty(n, np.int64)
    for i in range(n):
        t0 = pc()
        d[i] = pc() - t0
    return float(np.median(d))


def run_interleaved(systems: list[System], frames: np.ndarray, rounds: int, block: int) -> None:
    pc = time.perf_counter_ns
    n = len(frames)
    for r in range(rounds):
        for s in systems:
            s.fresh()
        starts = list(range(0, n, block))
        per_round = {s.name: np.empty(n, np.int64) for s in systems}
        for bi, b0 in enumerate(starts):
            order = systems[bi % len(systems):] + systems[:bi % len(systems)]
            for s in order:
                fn = s.fn
                out = per_round[s.name]
                for i in range(b0, min(b0 + block, n)):
                    f = frames[i]
                    t0 = pc()
                    fn(f)
                    out[i] = pc() - t0
        for s in systems:
            s.ns.append(per_round[s.name])


def stats_us(ns: np.ndarray) -> dict:
    us = ns / 1000.0
    mean = float(us.mean())
    return {"p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": mean, "streams_per_core": 10_000.0 / mean}


# ------------------------------------------------------------------------- batch
def run_batch(frames: np.ndarray, n_streams: int, n_frames: int, rounds: int, block: int) -> list[dict]:
    """One pipeline on (n_streams, 480) against n_streams pipelines (and APMs) of one stream each."""
    import pywebrtc_audio
    from mediacore import VAD, HighPass

    # stream k starts k * 37 frames into the looped signal, so the streams differ
    idx = (np.arange(n_frames)[:, None] + 37 * np.arange(n_streams)[None, :]) % len(frames)
    blocks = np.ascontiguousarray(frames[idx])  # (n_frames, n_streams, 480)

    chain = chain48

    def make_batch(build):
        def make():
            st = build()
            return st.process
        return make

    def make_sep(build):
        def make():
            procs = [build().process for _ in range(n_streams)]

            def fn(X):
                for p, x in zip(procs, X):
                    p(x)
            return fn
        return make

    def apm():
        return pywebrtc_audio.AudioProcessor(sample_rate=RATE, num_channels=1, high_pass_filter=True,
                                             noise_suppression=True, auto_gain_control=True, ns_level=2)

    cases = [
        ("ours batch (1 pipeline, 64 ch)", make_batch(chain)),
        ("ours separate (64 pipelines)", make_sep(chain)),
        ("peer separate (64 APMs)", make_sep(apm)),
    ]
    cases += [(f"{name} batch", make_batch(build)) for name, _, build in chain_stage_builders()]
    cases += [
        ("ours HighPass (IIR) batch", make_batch(lambda: HighPass(sample_rate=RATE))),
        ("ours VAD energy batch", make_batch(lambda: VAD(sample_rate=RATE, backend="energy"))),
    ]
    # warm up (numba specialisations for 64 channels)
    for _, make in cases:
        fn = make()
        for X in blocks[:20]:
            fn(X)
    times = {name: [] for name, _ in cases}
    pc = time.perf_counter_ns
    for r in range(rounds):
        fns = {name: make() for name, make in cases}
        for bi, b0 in enumerate(range(0, n_frames, block)):
            order = cases[bi % len(cases):] + cases[:bi % len(cases)]
            for name, _ in order:
                fn = fns[name]
                for X in blocks[b0:b0 + block]:
                    t0 = pc()
                    fn(X)
                    times[name].append(pc() - t0)
    rows = []
    for name, _ in cases:
        ns = np.asarray(times[name], np.float64)
        per_stream_mean = ns.mean() / 1000.0 / n_streams
        rows.append({"system": name, "p50_frame_us": float(np.percentile(ns, 50) / 1000.0),
                     "mean_frame_us": float(ns.mean() / 1000.0), "per_stream_us": per_stream_mean,
                     "streams_per_core": 10_000.0 / per_stream_mean})
    return rows


# -------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="signal length (default 20 s = 2000 frames)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=100, help="frames per turn in the round robin")
    ap.add_argument("--batch-streams", type=int, default=64)
    ap.add_argument("--batch-frames", type=int, default=200, help="frames per stream per round in the batch run")
    ap.add_argument("--no-batch", action="store_true")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args(argv)

    info = env_info()
    print(format_environment(info))
    frames = load_signal(args.seconds)
    tov = timer_overhead_ns()
    print(f"signal: example_noisy.flac looped to {len(frames) * FRAME / RATE:.1f} s, {len(frames)} frames of "
          f"{FRAME} samples at {RATE} Hz; {args.rounds} rounds, round robin per {args.block} frames; "
          f"perf_counter_ns pair overhead {tov:.0f} ns (not subtracted)")

    systems = build_systems()
    # warm-up: numba compilation and first-touch allocations happen here, untimed
    for s in systems:
        s.fresh()
        for f in frames[:300]:
            s.fn(f)
    t0 = time.perf_counter()
    run_interleaved(systems, frames, args.rounds, args.block)
    wall = time.perf_counter() - t0

    by = {s.name: s for s in systems}
    peer = stats_us(np.concatenate(by["peer"].ns))
    rows = []
    for s in systems:
        st = stats_us(np.concatenate(s.ns))
        per_round_p50 = [float(np.percentile(r, 50) / 1000.0) for r in s.ns]
        row = {"system": s.name, "kind": s.kind, "what": s.what, **st,
               "p50_vs_peer": st["p50_us"] / peer["p50_us"], "p99_vs_peer": st["p99_us"] / peer["p99_us"],
               "mean_vs_peer": st["mean_us"] / peer["mean_us"], "p50_us_per_round": per_round_p50}
        rows.append(row)

    print(f"\n### Per-frame cost, 1 thread, 480-sample frames at 48 kHz (measured in {wall:.1f} s)\n")
    print("| system | what | p50 µs | p99 µs | mean µs | p50 / peer | p99 / peer | streams/core | "
          "p50 per round µs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['system']} | {r['what']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['mean_us']:.1f} | "
              f"{r['p50_vs_peer']:.2f} | {r['p99_vs_peer']:.2f} | {r['streams_per_core']:.0f} | "
              f"{', '.join(f'{v:.1f}' for v in r['p50_us_per_round'])} |")
    stage_sum = sum(r["mean_us"] for r in rows if r["kind"] == "chain stage")
    ours_mean = next(r["mean_us"] for r in rows if r["system"] == "ours")
    print(f"\nsum of the chain's stages' means {stage_sum:.1f} µs vs chain mean {ours_mean:.1f} µs "
          f"(difference = Pipeline overhead: {ours_mean - stage_sum:+.1f} µs)")
    print("peer = webrtc APM (HPF + NS level 2 + AGC2). Ratios > 1 mean ours costs more.")

    batch_rows = []
    if not args.no_batch:
        t0 = time.perf_counter()
        batch_rows = run_batch(frames, args.batch_streams, args.batch_frames, args.rounds, block=20)
        wall_b = time.perf_counter() - t0
        ref = next(r for r in batch_rows if r["system"].startswith("ours separate"))
        peer_b = next(r for r in batch_rows if r["system"].startswith("peer separate"))
        print(f"\n### Batch: {args.batch_streams} streams x {args.batch_frames} frames x {args.rounds} rounds, "
              f"round robin per 20 frames (measured in {wall_b:.1f} s)\n")
        print("| system | p50 µs / call | mean µs / call | per stream µs | streams/core | vs ours separate | "
              "vs peer separate |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in batch_rows:
            r["vs_ours_separate"] = r["per_stream_us"] / ref["per_stream_us"]
            r["vs_peer_separate"] = r["per_stream_us"] / peer_b["per_stream_us"]
            print(f"| {r['system']} | {r['p50_frame_us']:.0f} | {r['mean_frame_us']:.0f} | "
                  f"{r['per_stream_us']:.1f} | {r['streams_per_core']:.0f} | {r['vs_ours_separate']:.2f} | "
                  f"{r['vs_peer_separate']:.2f} |")

    if args.json:
        out = {"env": info, "timer_overhead_ns": tov, "frames": len(frames), "rounds": args.rounds,
               "block": args.block, "per_frame": rows, "batch_streams": args.batch_streams, "batch": batch_rows}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
