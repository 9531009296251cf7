"""Noise-suppression quality on the development corpus, the method of baseline.md.

Usage::

    python benchmarks/quality_dev.py --corpus /work/shared/corpus/dev \\
        --systems noisy,webrtc,dsp [--jobs 2] [--out results.json] [--clips n00,n01] \\
        [--set max_attenuation_db=30 ...] [--save-audio DIR]

Every system runs on every clip at 48 kHz.  A system's constant delay is the
median, over the clips with speech, of the cross-correlation lag of its output
against the clean reference (+-100 ms); outputs are shifted by it, cut or
zero-padded to the input length and scored at 16 kHz (see
``mediacore.bench.metrics``).  Prints the markdown tables of baseline.md and
writes per-clip and mean results to JSON.

Systems: ``noisy``, ``webrtc``, ``rnnoise`` (``mediacore.bench.peers``) and
ours, ``dsp`` and ``neural``, built with ``mediacore.chain.default_chain``;
``--set KEY=VALUE`` is passed to ``default_chain`` as a keyword argument.

RTF is processing time / audio time of the system call alone (construction,
file reading and scoring are not timed), with numeric libraries limited to one
thread; with ``--jobs N`` N clips run at a time.
"""

from __future__ import annotations

import os

# One thread per process for the numeric libraries, so RTF is a one-thread
# figure and --jobs workers do not fight over the cores.  Set before numpy is
# imported; spawned workers inherit the environment.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import ast  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mediacore.bench import metrics  # noqa: E402
from mediacore.bench.corpus import Clip, load_corpus  # noqa: E402
from mediacore.bench.environment import environment, format_environment  # noqa: E402
from mediacore.bench.peers import PEERS  # noqa: E402
from mediacore.errors import MediaCoreError, ParameterError  # noqa: E402

SR = 48000
MAX_DELAY_MS = 100.0
OUR_SYSTEMS = ("dsp", "neural")

# Column key, header, format; "noisy" metrics are means over noisy clips.
COLUMNS = [
    ("pesq_wb", "PESQ-WB", "{:.2f}"),
    ("stoi", "STOI", "{:.3f}"),
    ("estoi", "ESTOI", "{:.3f}"),
    ("si_sdr", "SI-SDR dB", "{:.1f}"),
    ("SIG", "DNSMOS SIG", "{:.2f}"),
    ("BAK", "BAK", "{:.2f}"),
    ("OVRL", "OVRL", "{:.2f}"),
    ("P808", "P.808", "{:.2f}"),
    ("clean_pesq_wb", "clean-only PESQ", "{:.2f}"),
    ("clean_OVRL", "clean-only OVRL", "{:.2f}"),
    ("noise_out_dbfs", "noise-only out dBFS", "{:.1f}"),
    ("noise_atten_db", "noise-only atten. dB", "{:.1f}"),
    ("delay_ms", "delay ms", "{:.1f}"),
    ("rtf", "RTF", "{:.4f}"),
]
NOISY_KEYS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "SIG", "BAK", "OVRL", "P808")

VERSION_PACKAGES = ("mediacore", "numpy", "scipy", "soundfile", "pesq", "pystoi", "speechmos",
                    "onnxruntime", "librosa", "pywebrtc-audio", "pyrnnoise", "numba")


# --------------------------------------------------------------------------- systems


def _parse_value(text: str):
    """``--set`` value: a Python literal (30, 0.5, 'x', None), true/false, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(items: Iterable[str]) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ParameterError(f"--set expects KEY=VALUE with a Python identifier as KEY, got {item!r}")
        out[key] = _parse_value(value)
    return out


def _build_chain(name: str, overrides: dict):
    from mediacore.chain import default_chain  # the core library; imported only when needed

    return default_chain(sample_rate=SR, num_channels=1, denoise=name, agc=False, **overrides)


# Per-process state: systems whose one-off warm-up (JIT compilation, model
# loading caches) already ran, so the first timed clip is not penalised.
_WARM: set = set()


def make_processor(name: str, overrides: dict) -> Callable[[np.ndarray], np.ndarray]:
    """A fresh processor ``f(x48) -> y`` for one clip; building it is not timed."""
    if name in PEERS:
        return PEERS[name]  # each call of a peer creates its own state
    if name in OUR_SYSTEMS:
        key = (name, repr(sorted(overrides.items())))
        if key not in _WARM:
            warm = _build_chain(name, overrides)
            noise = np.random.default_rng(0).standard_normal((1, SR // 2)).astype(np.float32) * 0.01
            warm.run(noise)
            _WARM.add(key)
        pipe = _build_chain(name, overrides)

        def run(x48: np.ndarray) -> np.ndarray:
            return pipe.run(x48[None, :].astype(np.float32, copy=False))[0]

        return run
    raise ParameterError(f"unknown system {name!r}; known: {', '.join([*PEERS, *OUR_SYSTEMS])}")


def check_system(name: str, overrides: dict) -> None:
    """Fail fast (missing package, bad --set key) before the long run starts."""
    if name in OUR_SYSTEMS:
        y = make_processor(name, overrides)(np.zeros(SR // 10, np.float32))
        if np.asarray(y).shape != (SR // 10,):
            raise MediaCoreError(f"system {name!r}: run() returned shape {np.asarray(y).shape} "
                                 f"for a ({SR // 10},) input; expected the input length")
    else:
        make_processor(name, overrides)(np.zeros(480, np.float32))


# --------------------------------------------------------------------------- workers (top level: spawn-safe)


def _init_worker(dnsmos_threads: int) -> None:
    metrics.set_num_threads(dnsmos_threads)


def _process_task(task: tuple) -> dict:
    """Run one system on one clip; store the raw output; return lag and timing."""
    name, clip, overrides, workdir = task
    x, sr = clip.load_noisy()
    if sr != SR:
        raise MediaCoreError(f"clip {clip.id}: {sr} Hz, the benchmark runs at {SR} Hz")
    proc = make_processor(name, overrides)
    t0 = time.perf_counter()
    y = proc(x)
    seconds = time.perf_counter() - t0
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise MediaCoreError(f"system {name!r} returned shape {y.shape} on clip {clip.id}; expected 1-D")
    if not np.all(np.isfinite(y)):
        raise MediaCoreError(f"system {name!r} returned NaN/Inf on clip {clip.id}")
    np.save(Path(workdir) / f"{name}__{clip.id}.npy", y)
    lag = None
    if clip.has_speech:
        ref, _ = clip.load_clean()
        lag = metrics.estimate_delay(ref, y, SR, max_ms=MAX_DELAY_MS)
    return {"system": name, "id": clip.id, "lag": lag, "seconds": seconds,
            "duration_s": x.size / SR, "out_len": int(y.size)}


def _score_task(task: tuple) -> dict:
    """Score one stored output (aligned by the system delay)."""
    name, clip, delay, workdir, save_dir = task
    y = np.load(Path(workdir) / f"{name}__{clip.id}.npy")
    scores = metrics.score_clip(clip, y, delay, sr=SR)
    if save_dir is not None:
        import soundfile as sf

        x, _ = clip.load_noisy()
        out = Path(save_dir) / name
        out.mkdir(parents=True, exist_ok=True)
        aligned = np.clip(metrics.align(y, delay, x.size), -1.0, 1.0)
        sf.write(str(out / f"{clip.id}.flac"), aligned, SR, subtype="PCM_24")
    return {"system": name, "id": clip.id, "scores": scores}


def _map(fn: Callable, tasks: list, jobs: int, dnsmos_threads: int, label: str) -> list:
    """Run tasks in-process (jobs == 1) or on a spawn pool; prints progress to stderr."""
    results = []
    t0 = time.perf_counter()

    tty = sys.stderr.isatty()

    def tick(i: int) -> None:
        # A terminal gets one updating line; a log file one line every 20 tasks.
        done = i == len(tasks)
        if tty or done or i % 20 == 0:
            msg = f"  {label}: {i}/{len(tasks)} ({time.perf_counter() - t0:.0f} s)"
            if tty:
                print("\r" + msg, end="\n" if done else "", file=sys.stderr, flush=True)
            else:
                print(msg, file=sys.stderr, flush=True)

    if jobs <= 1:
        _init_worker(dnsmos_threads)
        for i, task in enumerate(tasks, 1):
            results.append(fn(task))
            tick(i)
        return results
    ctx = mp.get_context("spawn")  # fork would share onnxruntime/numba state; spawn is safe everywhere
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(dnsmos_threads,)) as pool:
        for i, res in enumerate(pool.imap_unordered(fn, tasks, chunksize=1), 1):
            results.append(res)
            tick(i)
    return results


# --------------------------------------------------------------------------- aggregation, report


def _mean(values: Iterable) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else float("nan")


def summarize(clips: list[Clip], per_clip: dict[str, dict], delay: int, seconds: float,
              duration: float) -> tuple[dict, dict]:
    """Means over clips as in baseline.md, and the per-SNR breakdown of noisy clips."""
    by_kind: dict[str, list[dict]] = {"noisy": [], "clean-only": [], "noise-only": []}
    for c in clips:
        by_kind[c.kind].append(per_clip[c.id])
    mean = {k: _mean(r.get(k) for r in by_kind["noisy"]) for k in NOISY_KEYS}
    mean["pesq_wb_missing"] = sum(1 for r in by_kind["noisy"] + by_kind["clean-only"]
                                  if r.get("pesq_wb") is None or math.isnan(r["pesq_wb"]))
    mean["clean_pesq_wb"] = _mean(r.get("pesq_wb") for r in by_kind["clean-only"])
    mean["clean_OVRL"] = _mean(r.get("OVRL") for r in by_kind["clean-only"])
    mean["noise_out_dbfs"] = _mean(r.get("out_dbfs") for r in by_kind["noise-only"])
    mean["noise_atten_db"] = _mean(r.get("atten_db") for r in by_kind["noise-only"])
    mean["delay_samples"] = delay
    mean["delay_ms"] = delay * 1000.0 / SR
    mean["rtf"] = seconds / duration if duration > 0 else float("nan")

    per_snr = {}
    snrs = sorted({c.snr_db for c in clips if c.kind == "noisy"})
    for snr in snrs:
        rows = [per_clip[c.id] for c in clips if c.kind == "noisy" and c.snr_db == snr]
        per_snr[f"{snr:g}"] = {k: _mean(r.get(k) for r in rows) for k in ("pesq_wb", "si_sdr", "OVRL")}
        per_snr[f"{snr:g}"]["clips"] = len(rows)
    return mean, per_snr


def _fmt(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return fmt.format(v)


def render_tables(results: dict, counts: dict[str, int], jobs: int) -> str:
    lines = [f"Corpus `{results['corpus_name']}`: {counts['noisy']} noisy, {counts['clean-only']} clean-only, "
             f"{counts['noise-only']} noise-only clips; metrics at 16 kHz after delay compensation.", ""]
    lines.append("| system | " + " | ".join(h for _, h, _ in COLUMNS) + " |")
    lines.append("|---|" + "---:|" * len(COLUMNS))
    for name, res in results["systems"].items():
        m = res["mean"]
        lines.append(f"| {name} | " + " | ".join(_fmt(f, m.get(k)) for k, _, f in COLUMNS) + " |")
    snrs = next(iter(results["systems"].values()))["per_snr"].keys() if results["systems"] else []
    if snrs:
        lines += ["", "Per input SNR (noisy clips): PESQ-WB / SI-SDR dB / DNSMOS OVRL", ""]
        lines.append("| system | " + " | ".join(f"{s} dB" for s in snrs) + " |")
        lines.append("|---|" + "---:|" * len(snrs))
        for name, res in results["systems"].items():
            cells = []
            for s in snrs:
                r = res["per_snr"][s]
                cells.append(f"{_fmt('{:.2f}', r['pesq_wb'])} / {_fmt('{:.1f}', r['si_sdr'])} / "
                             f"{_fmt('{:.2f}', r['OVRL'])}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"RTF = system-call time / audio time, one thread, {jobs} clip(s) at a time on "
              f"{os.cpu_count()} cores. Means over clips; PESQ has no value on an all-silent output."]
    return "\n".join(lines)


def _jsonable(obj):
    """NaN -> null so the file is strict JSON."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if math.isnan(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="corpus directory with manifest.csv")
    ap.add_argument("--systems", default="noisy,webrtc,dsp",
                    help=f"comma list of {', '.join([*PEERS, *OUR_SYSTEMS])}")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes for scoring (clips at a time)")
    ap.add_argument("--process-jobs", type=int, default=1,
                    help="clips processed at a time in the timed phase (default 1 as in baseline.md; "
                         "more is faster but inflates RTF through contention)")
    ap.add_argument("--out", default="quality_dev_results.json", help="JSON results file")
    ap.add_argument("--clips", default=None, help="comma list of clip ids (default: all)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra keyword argument for default_chain (repeatable)")
    ap.add_argument("--save-audio", default=None, metavar="DIR",
                    help="also write the aligned 48 kHz outputs to DIR/SYSTEM/ID.flac")
    args = ap.parse_args(argv)

    try:
        systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        known = [*PEERS, *OUR_SYSTEMS]
        for s in systems:
            if s not in known:
                raise ParameterError(f"unknown system {s!r}; known: {', '.join(known)}")
        if len(set(systems)) != len(systems):
            raise ParameterError(f"system listed twice in {args.systems!r}")
        if args.jobs < 1 or args.process_jobs < 1:
            raise ParameterError(f"--jobs and --process-jobs must be >= 1, got {args.jobs}, {args.process_jobs}")
        overrides = parse_overrides(args.overrides)
        if overrides and not any(s in OUR_SYSTEMS for s in systems):
            print("note: --set only applies to dsp/neural, none of which is selected", file=sys.stderr)
        clips = load_corpus(args.corpus)
        if args.clips:
            wanted = [c.strip() for c in args.clips.split(",") if c.strip()]
            ids = {c.id for c in clips}
            unknown = [w for w in wanted if w not in ids]
            if unknown:
                raise ParameterError(f"unknown clip id(s): {', '.join(unknown)}")
            clips = [c for c in clips if c.id in set(wanted)]
    except MediaCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    env = environment(VERSION_PACKAGES)
    vers = {"python": env["python"], **env["versions"]}
    print(format_environment(env))
    print(f"jobs: {args.jobs} (processing: {args.process_jobs})")
    if overrides:
        print(f"default_chain overrides: {overrides}")
    counts = {k: sum(c.kind == k for c in clips) for k in ("noisy", "clean-only", "noise-only")}
    print(f"corpus: {args.corpus} ({len(clips)} clips: {counts})", flush=True)

    try:
        for s in systems:
            check_system(s, overrides)
    except (MediaCoreError, ImportError, TypeError) as exc:  # TypeError: bad --set keyword
        print(f"error: {exc}", file=sys.stderr)
        return 2

    # With several workers each DNSMOS session gets one thread; alone it may use all cores.
    dnsmos_threads = 1 if args.jobs > 1 else 0
    t_start = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="quality_dev_")
    try:
        # Phase 1 (timed): run every system on every clip.
        tasks = [(s, c, overrides, workdir) for s in systems for c in clips]
        runs = _map(_process_task, tasks, args.process_jobs, dnsmos_threads, "process")
        by_sys: dict[str, list[dict]] = {s: [] for s in systems}
        for r in runs:
            by_sys[r["system"]].append(r)

        delays: dict[str, int] = {}
        for s in systems:
            lags = [r["lag"] for r in by_sys[s] if r["lag"] is not None]
            if lags:
                delays[s] = int(round(float(np.median(lags))))  # even count: midpoint, rounded
            else:
                print(f"warning: no speech clip selected, delay of {s} taken as 0", file=sys.stderr)
                delays[s] = 0

        # Phase 2: align and score.
        score_tasks = [(s, c, delays[s], workdir, args.save_audio) for s in systems for c in clips]
        scored = _map(_score_task, score_tasks, args.jobs, dnsmos_threads, "score")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    wall = time.perf_counter() - t_start

    scores = {(r["system"], r["id"]): r["scores"] for r in scored}
    results: dict = {"corpus": str(Path(args.corpus).resolve()), "corpus_name": Path(args.corpus).resolve().name,
                     "versions": vers, "cpu_count": os.cpu_count(), "jobs": args.jobs,
                     "process_jobs": args.process_jobs,
                     "overrides": overrides, "wall_s": wall, "systems": {}}
    for s in systems:
        runs_s = {r["id"]: r for r in by_sys[s]}
        per_clip = {}
        for c in clips:
            r = runs_s[c.id]
            per_clip[c.id] = {"kind": c.kind, "snr_db": c.snr_db, "lag": r["lag"], "seconds": r["seconds"],
                              "duration_s": r["duration_s"], "rtf": r["seconds"] / r["duration_s"],
                              **scores[(s, c.id)]}
        seconds = sum(r["seconds"] for r in by_sys[s])
        duration = sum(r["duration_s"] for r in by_sys[s])
        mean, per_snr = summarize(clips, per_clip, delays[s], seconds, duration)
        lags = [r["lag"] for r in by_sys[s] if r["lag"] is not None]
        mean["lag_spread_samples"] = int(max(lags) - min(lags)) if lags else 0
        results["systems"][s] = {"mean": mean, "per_snr": per_snr, "clips": per_clip}

    print()
    print(render_tables(results, counts, args.process_jobs))
    for s in systems:
        m = results["systems"][s]["mean"]
        if m["pesq_wb_missing"]:
            print(f"note: {s}: PESQ undefined on {m['pesq_wb_missing']} clip(s) (silent output), left out of the mean")
        if m["lag_spread_samples"] > 48:
            print(f"note: {s}: per-clip lags spread over {m['lag_spread_samples']} samples (> 1 ms); "
                  "the delay may not be constant")
    print(f"\nwall time: {wall:.1f} s")

    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_jsonable(results), indent=1) + "\n")
        print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
