"""Start-up time of a fresh process: import, build the default chain, process one frame.

Each measurement is a new ``python -c`` process (single-threaded) that runs::

    import time; t = time.perf_counter()
    import mediacore, numpy as np
    p = mediacore.default_chain(sample_rate=48000)
    p.process(np.zeros(480, np.float32))
    print(time.perf_counter() - t)

(the child also prints the split: import / build / first frame).

* cold: ``NUMBA_CACHE_DIR`` is a fresh, empty temporary directory, so every
  numba kernel the chain uses is compiled;
* warm: the same cache directory again (runs 2 and 3), so the kernels load
  from the cache.  Target: < 1.5 s.

For scale, the same child with the peer (pywebrtc_audio ``AudioProcessor``,
HPF + NS + AGC) instead of our chain, and bare ``import numpy``, run in the
same session, interleaved with ours.  Python's own bytecode caches are left
as they are (warm) in every run.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/startup.py [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from mediacore.bench.environment import environment, format_environment

TARGET_WARM_S = 1.5

OURS = """
import time; t = time.perf_counter()
import mediacore, numpy as np
t1 = time.perf_counter()
p = mediacore.default_chain(sample_rate=48000)
t2 = time.perf_counter()
p.process(np.zeros(480, np.float32))
t3 = time.perf_counter()
print(t3 - t, t1 - t, t2 - t1, t3 - t2)
"""

PEER = """
import time; t = time.perf_counter()
import pywebrtc_audio, numpy as np
t1 = time.perf_counter()
p = pywebrtc_audio.AudioProcessor(sample_rate=48000, num_channels=1, high_pass_filter=True,
                                  noise_suppression=True, auto_gain_control=True, ns_level=2)
t2 = time.perf_counter()
p.process(np.zeros(480, np.float32))
t3 = time.perf_counter()
print(t3 - t, t1 - t, t2 - t1, t3 - t2)
"""

NUMPY = """
import time; t = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
print(t1 - t, t1 - t, 0.0, 0.0)
"""


PACKAGES = ("numpy", "numba", "llvmlite", "scipy", "rocket-fft", "pywebrtc-audio", "webrtcvad-wheels")


def child(code: str, cache_dir: str, env_base: dict) -> dict:
    env = dict(env_base, NUMBA_CACHE_DIR=cache_dir)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"child failed ({r.returncode}):\n{r.stderr}")
    total, imp, build, first = (float(v) for v in r.stdout.split()[-4:])
    return {"total_s": total, "import_s": imp, "build_s": build, "first_frame_s": first}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per cache directory: 1 cold + (repeat - 1) warm (default 3)")
    ap.add_argument("--caches", type=int, default=2, help="fresh cache directories to try (default 2)")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)

    env_base = dict(os.environ)
    for v in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env_base[v] = "1"
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env_base["PYTHONPATH"] = src + (os.pathsep + env_base["PYTHONPATH"] if env_base.get("PYTHONPATH") else "")

    env = environment(PACKAGES, environ=env_base)  # thread variables: the children's
    print(format_environment(env) + " (in every child)")
    print(f"interpreter: {sys.executable}; mediacore from {src}\n")

    runs = []  # (system, cache_index, run_index, kind, result)
    for ci in range(args.caches):
        ours_dir = tempfile.mkdtemp(prefix="mc_numba_cache_")
        peer_dir = tempfile.mkdtemp(prefix="mc_numba_cache_")
        try:
            for ri in range(args.repeat):
                kind = "cold" if ri == 0 else "warm"
                # interleave: ours, peer, numpy
                runs.append(("ours", ci, ri, kind, child(OURS, ours_dir, env_base)))
                runs.append(("peer", ci, ri, kind, child(PEER, peer_dir, env_base)))
                runs.append(("numpy", ci, ri, kind, child(NUMPY, peer_dir, env_base)))
        finally:
            shutil.rmtree(ours_dir, ignore_errors=True)
            shutil.rmtree(peer_dir, ignore_errors=True)

    print("### Every run\n")
    print("| system | cache dir | run | kind | total s | import s | build s | first frame s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for name, ci, ri, kind, r in runs:
        print(f"| {name} | {ci} | {ri + 1} | {kind} | {r['total_s']:.3f} | {r['import_s']:.3f} | "
              f"{r['build_s']:.3f} | {r['first_frame_s']:.3f} |")

    def med(name, kind, key="total_s"):
        vals = [r[key] for n, _, _, k, r in runs if n == name and k == kind]
        return statistics.median(vals) if vals else float("nan")

    summary = {}
    print("\n### Summary (median over runs)\n")
    print("| system | kind | total s | import s | build s | first frame s | total / peer | total / numpy import |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in ("ours", "peer", "numpy"):
        for kind in ("cold", "warm"):
            row = {k: med(name, kind, k) for k in ("total_s", "import_s", "build_s", "first_frame_s")}
            row["vs_peer"] = row["total_s"] / med("peer", kind)
            row["vs_numpy"] = row["total_s"] / med("numpy", kind)
            summary[f"{name}_{kind}"] = row
            print(f"| {name} | {kind} | {row['total_s']:.3f} | {row['import_s']:.3f} | {row['build_s']:.3f} | "
                  f"{row['first_frame_s']:.3f} | {row['vs_peer']:.1f} | {row['vs_numpy']:.1f} |")
    warm = summary["ours_warm"]["total_s"]
    verdict = "PASS" if warm < TARGET_WARM_S else "FAIL"
    print(f"\nours warm start-up {warm:.3f} s, target < {TARGET_WARM_S} s: {verdict}; "
          f"cold {summary['ours_cold']['total_s']:.3f} s")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "runs": [
                {"system": n, "cache": ci, "run": ri + 1, "kind": k, **r} for n, ci, ri, k, r in runs],
                "summary": summary, "target_warm_s": TARGET_WARM_S, "verdict": verdict}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
