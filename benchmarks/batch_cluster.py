"""``mediacore.batch`` throughput: in-process vs a process pool vs a
dask.distributed cluster, on the same generated folder.

Writes ``--files`` mp4 recordings of ``--seconds`` each (H.264 160x96 at
5 fps + AAC speech/noise: the bundled noisy example) into a temporary
directory, then cleans the folder with ``batch_clean`` three times:

* ``local``: ``executor=None`` (one process, one thread),
* ``pool``: ``ProcessPoolExecutor(--workers)`` (spawn),
* ``dask``: ``distributed.LocalCluster(n_workers=--workers,
  threads_per_worker=1, processes=True)``, a scheduler and worker processes
  on this machine, through ``Client``.

Reported: wall time, audio hours, x real time (audio seconds per wall
second, all workers together), and whether every output file is
byte-identical to the local run's.  Worker start-up is not timed (the pool
and the cluster are up and warm before the batch starts).

Usage::

    PYTHONPATH=src nice .venv/bin/python benchmarks/batch_cluster.py [--files 20] [--seconds 60] [--workers 2]
"""

from __future__ import annotations

import os

for _v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from fractions import Fraction  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mediacore.bench.environment import environment, format_environment  # noqa: E402

RATE = 48000
PACKAGES = ("mediacore", "numpy", "numba", "onnxruntime", "av", "dask", "distributed")


def make_file(path: Path, seconds: float, seed: int, speech: np.ndarray) -> None:
    import av

    from mediacore.io._av import float_to_frame

    n = int(seconds * RATE)
    x = np.roll(np.tile(speech, n // len(speech) + 1), seed * 4801)[:n][None, :] * (0.5 + 0.05 * (seed % 10))
    with av.open(str(path), "w") as oc:
        vs = oc.add_stream("libx264", rate=5, options={"preset": "ultrafast"})
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        a = oc.add_stream("aac", rate=RATE)
        a.layout = "mono"
        a.codec_context.open()
        for i in range(int(seconds * 5)):
            vf = av.VideoFrame.from_ndarray(np.full((96, 160, 3), (i * 3 + seed) % 255, np.uint8), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 5)
            oc.mux(vs.encode(vf))
        oc.mux(vs.encode(None))
        fs = a.codec_context.frame_size
        for i in range(0, n, fs):
            f = float_to_frame(x[:, i: i + fs].astype(np.float32), a.codec_context.format.name, "mono", RATE)
            f.pts, f.time_base = i, Fraction(1, RATE)
            oc.mux(a.encode(f))
        oc.mux(a.encode(None))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    env = environment(PACKAGES)
    print(format_environment(env))

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from importlib.resources import files

    import soundfile as sf
    from distributed import Client, LocalCluster

    from mediacore.batch import BatchTask, batch_clean, clean_file

    speech, sr = sf.read(str(files("mediacore") / "_assets" / "example_noisy.flac"), dtype="float32")
    work = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    try:
        src = work / "in"
        src.mkdir()
        for i in range(args.files):
            make_file(src / f"rec{i:03d}.mp4", args.seconds, i, speech)
        print(f"\n{args.files} files x {args.seconds:.0f} s (H.264 + AAC) in {src}; {args.workers} workers\n")
        warm = BatchTask(str(src / "rec000.mp4"), str(work / "warm" / "w.mp4"))

        rows = {}
        out = work / "local"
        clean_file(warm)  # numba / onnxruntime warm in this process
        s = batch_clean(src, out)
        rows["local (1 process)"] = s
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(clean_file, [warm] * args.workers))
            rows[f"process pool ({args.workers})"] = batch_clean(src, work / "pool", executor=pool)
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: clean_file(warm))
            rows[f"dask LocalCluster ({args.workers} workers)"] = batch_clean(src, work / "dask", executor=client)
        ref = tree(out)
        print(f"{'executor':32s} {'files':>6s} {'failed':>7s} {'audio h':>8s} {'wall s':>7s} {'x real time':>12s} "
              f"{'identical':>10s}")
        result = {"environment": env, "files": args.files, "seconds": args.seconds, "runs": {}}
        for (name, s), d in zip(rows.items(), ("local", "pool", "dask")):
            same = tree(work / d) == ref
            print(f"{name:32s} {s.files:6d} {s.failed:7d} {s.audio_hours:8.3f} {s.wall_s:7.1f} {s.speed_x:12.1f} "
                  f"{str(same):>10s}")
            result["runs"][name] = {**{k: v for k, v in s.to_dict().items() if k != "results"}, "identical": same}
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(result, fh, indent=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
