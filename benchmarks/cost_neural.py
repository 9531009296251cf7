"""Per-10-ms-frame cost of the neural Denoise backend against RNNoise, one thread, same run.

48 kHz mono, the bundled example looped; one call per 480-sample frame.
Rows (round robin in blocks so machine noise falls on all alike; median ns):
``neural stage`` (Denoise(backend="neural").process: features, ONNX, synthesis,
stage bookkeeping), ``neural backend`` (the backend's process() alone),
``rnnoise pyrnnoise`` (``pyrnnoise.rnnoise.process_frame``, the package's own
per-frame call, int16 frame), ``rnnoise bare`` (the C ``rnnoise_process_frame``
through ctypes).  Then 64 streams: one (64, 480) call vs 64 single-stream calls.

    .venv/bin/python benchmarks/cost_neural.py [--seconds 10] [--rounds 3] [--model ONNX]

``--model`` adds a row ``neural stage (ONNX name)``: a candidate model timed in the same run.
"""

from __future__ import annotations

import os

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from signals import example  # noqa: E402

from mediacore.neural import NeuralBackend  # noqa: E402
from mediacore.stages.denoise import Denoise, backend_names, register_backend  # noqa: E402

if "neural" not in backend_names():
    register_backend("neural", NeuralBackend)
FRAME = 480


def systems(model: str | None = None):
    def neural_stage(path=None):
        st = Denoise(sample_rate=48000, backend="neural", highpass_hz=80.0, num_channels=1, model_path=path)
        return lambda f: st.process(f[None, :])

    def neural_backend():
        b = NeuralBackend(48000, 25.0, 80.0)
        b.allocate(1)
        prob = np.empty((1, 1), np.float32)
        return lambda f: b.process(f[None, :], prob)

    def rnnoise_pkg():
        from pyrnnoise import rnnoise as r
        state = r.create()
        return lambda f: r.process_frame(state, (f * 32767).astype(np.int16))

    def rnnoise_bare():
        from mediacore.bench.peers import _rnnoise_lib
        lib = _rnnoise_lib()
        state = lib.rnnoise_create(None)
        buf = np.empty(FRAME, np.float32)
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

        def fn(f):
            np.multiply(f, 32768.0, out=buf)
            lib.rnnoise_process_frame(state, ptr, ptr)
            return buf
        return fn

    rows = {"neural stage": neural_stage, "neural backend": neural_backend, "rnnoise pyrnnoise": rnnoise_pkg,
            "rnnoise bare": rnnoise_bare}
    if model:
        rows[f"neural stage ({Path(model).name})"] = lambda: neural_stage(model)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=50)
    ap.add_argument("--model", default=None, help="also time this neural model (ONNX) in the same run")
    args = ap.parse_args(argv)
    import onnxruntime
    import pyrnnoise  # noqa: F401
    print(f"python {sys.version.split()[0]}, onnxruntime {onnxruntime.__version__}, cpu_count {os.cpu_count()}, "
          "one thread")
    x = example("noisy", 48000)
    n_frames = int(args.seconds * 100)
    frames = np.resize(x, n_frames * FRAME).reshape(n_frames, FRAME).astype(np.float32)
    makers = systems(args.model)
    times = {k: [] for k in makers}
    for _ in range(args.rounds):
        fns = {k: m() for k, m in makers.items()}
        for k, fn in fns.items():  # warm-up (numba compile, first ONNX call)
            fn(frames[0])
        order = list(fns)
        for b0 in range(0, n_frames, args.block):
            order = order[1:] + order[:1]
            for k in order:
                fn = fns[k]
                for i in range(b0, min(b0 + args.block, n_frames)):
                    t = time.perf_counter_ns()
                    fn(frames[i])
                    times[k].append(time.perf_counter_ns() - t)
    med = {k: float(np.median(v)) / 1000 for k, v in times.items()}
    print("\n| system | median us / 10 ms frame | mean us | vs rnnoise pyrnnoise |\n|---|---:|---:|---:|")
    for k, v in times.items():
        print(f"| {k} | {med[k]:.1f} | {np.mean(v) / 1000:.1f} | {med[k] / med['rnnoise pyrnnoise']:.2f}x |")
    # many streams: one batched call vs one call per stream
    n = 64
    big = np.stack([np.roll(frames, 37 * i, axis=0) for i in range(n)], axis=1)  # (frames, 64, 480)
    b = NeuralBackend(48000, 25.0, 80.0)
    b.allocate(n)
    prob = np.empty((n, 1), np.float32)
    singles = [NeuralBackend(48000, 25.0, 80.0) for _ in range(4)]
    for s in singles:
        s.allocate(1)
    p1 = np.empty((1, 1), np.float32)
    tb, ts = [], []
    for i in range(min(n_frames, 300)):
        t = time.perf_counter_ns()
        b.process(big[i], prob)
        tb.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        for j, s in enumerate(singles):
            s.process(big[i, j: j + 1], p1)
        ts.append((time.perf_counter_ns() - t) / len(singles))
    per_stream_batched = float(np.median(tb)) / n / 1000
    single = float(np.median(ts)) / 1000
    print(f"\n64 streams in one call: {per_stream_batched:.1f} us per stream per frame; one stream per call: "
          f"{single:.1f} us -> ratio {per_stream_batched / single:.2f} (target <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
